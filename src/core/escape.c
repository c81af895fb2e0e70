/* SPDX-License-Identifier: MIT */
/*
 * core/escape.c - user text made safe to print on a terminal.
 *
 * Owns the one escaping rule every output of user text uses (job names,
 * commands, reasons, error messages): a terminal acts on control characters
 * (clears the screen, moves the cursor, forges a row), so those are shown
 * as escapes; printable UTF-8 is kept as written.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

size_t vram__utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || avail < n)
        return 0;
    unsigned cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++) {  /* a NUL ends a string here: it is no continuation */
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;                   /* overlong, out of range, or a surrogate */
    return n;
}

bool vram__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t n = vram__utf8_len(p, SIZE_MAX);
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
        } else if (c >= 0x80 && (used = vram__utf8_len(s, SIZE_MAX)) && !(c == 0xc2 && s[1] < 0xa0)) {
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
