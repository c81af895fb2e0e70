/* SPDX-License-Identifier: MIT */
/*
 * core/escape.c - user text made safe to print on a terminal.
 *
 * Owns the one escaping rule every output of user text uses (job names,
 * commands, reasons, error messages): a terminal acts on control characters
 * (clears the screen, moves the cursor, forges a row), so those are shown
 * as escapes; printable UTF-8 is kept as written.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* The length of the valid UTF-8 character at s (1 to 4), or 0 when s does
 * not start one (a stray continuation, an overlong form, a surrogate). */
size_t vram__utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (!n || c > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

bool vram__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t n = *p < 0x80 ? 1 : vram__utf8_len(p);
        if (!n)
            return false;
        p += n;
    }
    return true;
}

char *vram_text_escape(const char *text, char *out, size_t cap)
{
    if (!out || !cap)
        return out;
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    size_t at = 0;
    while (*s) {
        char esc[8];
        const char *put = esc;
        size_t len, used = 1;
        unsigned c = *s;
        if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c;
            len = 1;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == 0x1b) {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 'e';
            len = 2;
        } else if (c >= 0x80 && (used = vram__utf8_len(s)) && !(c == 0xc2 && s[1] < 0xa0)) {
            put = (const char *)s;  /* printable UTF-8 (U+0080..U+009F are C1 controls) */
            len = used;
        } else {
            if (c == 0xc2 && used == 2) {   /* a C1 control as UTF-8: both bytes shown */
                snprintf(esc, sizeof(esc), "\\xc2");
                if (at + 4 >= cap)
                    break;
                memcpy(out + at, esc, 4);
                at += 4;
                s++;
                c = *s;
            }
            used = 1;
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            len = 4;
        }
        if (at + len >= cap)
            break;
        memcpy(out + at, put, len);
        at += len;
        s += used;
    }
    out[at] = '\0';
    return out;
}
