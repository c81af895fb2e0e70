/* SPDX-License-Identifier: MIT */
/*
 * core/size.c - sizes and margins as people type them, and as vram prints
 * them.
 *
 * Owns the one grammar for sizes used everywhere (flags, environment,
 * profiles, the socket protocol): a decimal number, optional spaces, an
 * optional unit.  Binary units (K, KiB, ...) are powers of 1024, decimal ones
 * (KB, ...) powers of 1000.  Overflow past 2^64-1 bytes is refused, never
 * wrapped.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

#define UNITS_ACCEPTED "B, K/KiB, M/MiB, G/GiB, T/TiB (x1024) or KB, MB, GB, TB (x1000)"

static const struct {
    const char *name;
    double factor;
} units[] = {
    { "",    1.0 },
    { "b",   1.0 },
    { "k",   1024.0 },
    { "kib", 1024.0 },
    { "kb",  1e3 },
    { "m",   1048576.0 },
    { "mib", 1048576.0 },
    { "mb",  1e6 },
    { "g",   1073741824.0 },
    { "gib", 1073741824.0 },
    { "gb",  1e9 },
    { "t",   1099511627776.0 },
    { "tib", 1099511627776.0 },
    { "tb",  1e12 },
};

/* Reads the number at the start of text: digits with an optional fraction
 * and exponent, nothing else (no sign, no hex, no "inf").  Returns the
 * character after it, or NULL when there is no number. */
static const char *scan_number(const char *text, double *value_out)
{
    const char *p = text;

    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return NULL;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if ((*p == 'e' || *p == 'E') &&
        (isdigit((unsigned char)p[1]) ||
         ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
        p += 2;
        while (isdigit((unsigned char)*p))
            p++;
    }
    char buf[64];
    size_t n = (size_t)(p - text);
    if (n >= sizeof(buf))
        return NULL;
    memcpy(buf, text, n);
    buf[n] = '\0';
    errno = 0;
    *value_out = strtod(buf, NULL);
    return p;
}

int vram_size_parse(const char *text, uint64_t *bytes_out)
{
    if (!bytes_out)
        return vram__fail(VRAM_EINVAL, "vram_size_parse: NULL output");
    *bytes_out = 0;
    if (!text)
        return vram__fail(VRAM_EINVAL, "a size is required (e.g. 8GiB, 512M)");

    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return vram__fail(VRAM_EINVAL, "an empty size; give one such as 8GiB or 512M");
    if (*p == '-')
        return vram__fail(VRAM_EINVAL, "'%s' is not a size: sizes cannot be negative", text);
    if (*p == '+')
        p++;

    double value;
    const char *unit = scan_number(p, &value);
    if (!unit)
        return vram__fail(VRAM_EINVAL,
                          "'%s' is not a size: expected a number with an optional unit "
                          "(" UNITS_ACCEPTED "), e.g. 8GiB", text);
    while (isspace((unsigned char)*unit))
        unit++;
    char unit_buf[8];
    size_t ulen = strlen(unit);
    while (ulen > 0 && isspace((unsigned char)unit[ulen - 1]))
        ulen--;
    if (ulen >= sizeof(unit_buf))
        return vram__fail(VRAM_EINVAL, "'%s' is not a size: unknown unit '%.*s' (use " UNITS_ACCEPTED ")",
                          text, (int)ulen, unit);
    memcpy(unit_buf, unit, ulen);
    unit_buf[ulen] = '\0';

    double factor = -1.0;
    for (size_t i = 0; i < VRAM__ARRAY_LEN(units); i++)
        if (!strcasecmp(unit_buf, units[i].name)) {
            factor = units[i].factor;
            break;
        }
    if (factor < 0)
        return vram__fail(VRAM_EINVAL, "'%s' is not a size: unknown unit '%s' (use " UNITS_ACCEPTED ")",
                          text, unit_buf);

    double bytes = value * factor;
    /* "--vram 12" means 12 GiB to whoever typed it, not 12 bytes: a number
     * alone is bytes only where it is plainly a byte count. */
    if (!*unit_buf && bytes > 0 && bytes < 1048576.0)
        return vram__fail(VRAM_EINVAL, "'%s' has no unit, so it would be %g byte%s: give a unit, e.g. "
                          "%gGiB or %gGB (a number alone is bytes, and is refused under 1 MiB)",
                          text, value, value == 1.0 ? "" : "s", value, value);
    /* 2^64 is exactly representable; anything at or above it overflows. */
    if (!isfinite(bytes) || bytes >= 18446744073709551616.0)
        return vram__fail(VRAM_ERANGE, "'%s' is too large: sizes go up to 16 EiB (2^64-1 bytes)", text);
    /* Past 2^53 a double is already a whole number; llround would overflow
     * its signed result past 2^63. */
    *bytes_out = bytes < 9007199254740992.0 ? (uint64_t)vram__llround(bytes) : (uint64_t)bytes;
    return 0;
}

int vram_size_format(uint64_t bytes, char *buf, size_t cap)
{
    static const char *names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (bytes < 1024)
        return snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    double v = (double)bytes;
    size_t i = 0;
    while (v >= 1024.0 && i + 1 < VRAM__ARRAY_LEN(names)) {
        v /= 1024.0;
        i++;
    }
    /* 1023.96 GiB would print as "1024.0 GiB"; step up instead. */
    if (v >= 1023.95 && i + 1 < VRAM__ARRAY_LEN(names)) {
        v /= 1024.0;
        i++;
    }
    return snprintf(buf, cap, "%.1f %s", v, names[i]);
}

int vram_margin_parse(const char *text, double *percent_out, uint64_t *bytes_out,
                      int *is_percent_out)
{
    if (!percent_out || !bytes_out || !is_percent_out)
        return vram__fail(VRAM_EINVAL, "vram_margin_parse: NULL output");
    *percent_out = 0;
    *bytes_out = 0;
    *is_percent_out = 0;
    if (!text)
        return vram__fail(VRAM_EINVAL, "a margin is required (e.g. 10%% or 2GiB)");

    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    if (n > 0 && text[n - 1] == '%') {
        const char *p = text;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '-')
            return vram__fail(VRAM_EINVAL, "margin '%s' is negative; use 0%% to 100%% or a size", text);
        double v;
        const char *end = scan_number(p, &v);
        while (end && isspace((unsigned char)*end))
            end++;
        if (!end || end != text + n - 1)
            return vram__fail(VRAM_EINVAL, "margin '%s' is not a percent; use e.g. 10%% or a size like 2GiB", text);
        if (!(v <= 100.0))
            return vram__fail(VRAM_ERANGE, "margin '%s' is over 100%%; use 0%% to 100%% or a size", text);
        *percent_out = v;
        *is_percent_out = 1;
        return 0;
    }
    int rc = vram_size_parse(text, bytes_out);
    if (rc) {
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "margin %s; a margin is a percent of total (10%%) or a size (2GiB)", why);
    }
    return 0;
}

/* Durations: "100ms", "0.5s", "2m", or a bare number in `bare_unit_ms`
 * units (1 for milliseconds, 1000 for seconds).  Over a year is refused. */
int vram_duration_parse(const char *text, unsigned bare_unit_ms, uint64_t *ms_out)
{
    if (!ms_out)
        return vram__fail(VRAM_EINVAL, "vram_duration_parse: NULL output");
    *ms_out = 0;
    if (!text || !*text)
        return vram__fail(VRAM_EINVAL, "an empty duration; give one such as 100ms or 2s");
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        return vram__fail(VRAM_EINVAL, "'%s' is not a duration: it cannot be negative", text);
    double v;
    const char *unit = scan_number(p, &v);
    if (!unit)
        return vram__fail(VRAM_EINVAL, "'%s' is not a duration: use e.g. 100ms, 0.5s or 2m", text);
    while (isspace((unsigned char)*unit))
        unit++;
    double factor;
    if (*unit == '\0')
        factor = bare_unit_ms;
    else if (!strcasecmp(unit, "ms"))
        factor = 1;
    else if (!strcasecmp(unit, "s"))
        factor = 1000;
    else if (!strcasecmp(unit, "m") || !strcasecmp(unit, "min"))
        factor = 60000;
    else if (!strcasecmp(unit, "h"))
        factor = 3600000;
    else
        return vram__fail(VRAM_EINVAL, "'%s' is not a duration: unknown unit '%s' (use ms, s, m, h)",
                          text, unit);
    double ms = v * factor;
    if (!isfinite(ms) || ms > 86400000.0 * 365)
        return vram__fail(VRAM_ERANGE, "'%s' is too long a duration (at most a year)", text);
    *ms_out = (uint64_t)vram__llround(ms);
    return 0;
}
