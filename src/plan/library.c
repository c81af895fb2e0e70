/* SPDX-License-Identifier: MIT */
/*
 * plan/library.c - where profiles live and how they are found: the folders
 * of the "profiles" option (by default your calibrated copies, then the
 * shipped ones), loading by name or path, listing, and the profile's
 * public accessors.
 *
 * Owns the search (by name, or by a Hugging Face id that a profile's
 * hf_id names) and nothing of the format (profile.c).  The shipped
 * folder is found from where this code runs, so that a build tree uses its
 * own profiles/ (through build/share/vram/profiles) and an installed
 * library the copy installed beside it.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/options.h"
#include "plan/plan.h"

#define PROFILE_MAX_BYTES (1u << 20)

/* Reads a whole file of at most PROFILE_MAX_BYTES. */
static int read_file(const char *path, char **text_out, size_t *len_out)
{
    *text_out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)   /* a path that cannot name a file is the user's to mend, as a missing one */
        return vram__fail(errno == ENOENT ? VRAM_ENOENT
                          : errno == ENAMETOOLONG || errno == ENOTDIR ? VRAM_EINVAL : VRAM_EIO,
                          "cannot open %s: %s", path, strerror(errno));
    /* A folder opens, and then fails at its first read: said as what it is,
     * a path given wrong (bad input), not a disk that failed. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        return vram__fail(VRAM_EINVAL, "%s is %s, not a profile file", path,
                          S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
    }
    char *buf = malloc(PROFILE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return vram__fail(VRAM_ENOMEM, "out of host memory reading %s", path);
    }
    size_t n = fread(buf, 1, PROFILE_MAX_BYTES + 1, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        free(buf);
        return vram__fail(VRAM_EIO, "cannot read %s: %s", path, strerror(err));
    }
    if (n > PROFILE_MAX_BYTES) {
        free(buf);
        return vram__fail(VRAM_EPARSE, "%s: over %u bytes: not a profile", path, PROFILE_MAX_BYTES);
    }
    buf[n] = '\0';
    *text_out = buf;
    *len_out = n;
    return 0;
}

static int load_path(const char *path, vram_profile **out)
{
    char *text;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc)
        return rc;
    rc = plan__profile_parse(path, text, len, out);
    free(text);
    return rc;
}

/* A profile found as NAME.ini must call itself NAME: the file name is
 * what people type, the name is what plans and calibrated copies carry. */
static int load_named(const char *path, const char *name, vram_profile **out)
{
    int rc = load_path(path, out);
    if (rc || !strcmp((*out)->name, name))
        return rc;
    rc = vram__fail(VRAM_EPARSE, "%s: the file is %s.ini but names itself '%s' ([profile] name)",
                    path, name, (*out)->name);
    vram_profile_free(*out);
    *out = NULL;
    return rc;
}

/* ---- where profiles live ---------------------------------------------------------- */

int plan__user_dir(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, cap, "%s/vram/profiles", xdg);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.config/vram/profiles", home);
    else
        return vram__fail(VRAM_ENOENT, "neither XDG_CONFIG_HOME nor HOME is set: no folder for "
                          "calibrated profiles (set the profiles option)");
    return n > 0 && (size_t)n < cap ? 0 : vram__fail(VRAM_ERANGE, "profile folder path too long");
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The shipped profiles: share/vram/profiles beside the program or library
 * this code runs in, looked for from its folder up (PREFIX/bin/..,
 * PREFIX/lib/<multiarch>/../.., a build tree's build/tests/<module>/..,
 * wherever PREFIX was moved; the build tree has build/share/vram/profiles
 * pointing at its profiles/), else where the build meant to install it.
 * No source path is compiled in: builds are reproducible. */
static char self_path[PATH_MAX];    /* the library this code is in, as loaded (absolute) */
static bool self_is_program;        /* or the program itself: /proc/self/exe */

/* At load, while the working folder is still the one a relative path (a
 * dlopen("build/lib/libvram.so")) is relative to, and at no cost beyond
 * dladdr: every command and every process that loads libvram runs this,
 * and most never look for profiles (bench/tsp's CLI start rows).  The
 * path is resolved (realpath) when the shipped folder is asked for. */
__attribute__((constructor)) static void find_self(void)
{
    Dl_info info;
    struct link_map *map = NULL;
    self_path[0] = '\0';
    if (!dladdr1((void *)&vram_profile_load, &info, (void **)&map, RTLD_DL_LINKMAP) || !info.dli_fname)
        return;
    /* Linked into the program (the vram command, the tests): dladdr names
     * it by argv[0], which may be a bare name found on PATH. */
    self_is_program = map && !map->l_name[0];
    char cwd[PATH_MAX];
    if (info.dli_fname[0] == '/')
        vram__strlcpy(self_path, info.dli_fname, sizeof(self_path));
    else if (self_is_program || !getcwd(cwd, sizeof(cwd)) ||
             (size_t)snprintf(self_path, sizeof(self_path), "%s/%s", cwd, info.dli_fname) >= sizeof(self_path))
        self_path[0] = '\0';
}

/* The file this code runs from, links resolved ("" when unknown). */
static void self_file(char *out, size_t cap)
{
    out[0] = '\0';
    if (self_is_program) {
        ssize_t n = readlink("/proc/self/exe", out, cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    if (!out[0] && self_path[0] && cap >= PATH_MAX && !realpath(self_path, out))
        out[0] = '\0';
}

static void shipped_dir(char *buf, size_t cap)
{
    char real[PATH_MAX];
    self_file(real, sizeof(real));
    char *slash = real[0] ? strrchr(real, '/') : NULL;
    for (int up = 0; slash && slash != real && up < 4; up++) {
        *slash = '\0';
        char beside[PATH_MAX + 32], clean[PATH_MAX];
        snprintf(beside, sizeof(beside), "%s/../share/vram/profiles", real);
        if (realpath(beside, clean) && is_dir(clean) && strlen(clean) < cap) {
            vram__strlcpy(buf, clean, cap);
            return;
        }
        slash = strrchr(real, '/');
    }
    snprintf(buf, cap, "%s/profiles", VRAM_DATA_DIR);
}

int plan__profile_dirs(const vram_options *o, char dirs[][4096], int cap, int *n)
{
    vram_options *own = NULL;
    *n = 0;
    if (!o) {
        int rc = vram_options_new(&own);
        if (rc)
            return rc;
        vram__options_load_env_lenient(own);
        o = own;
    }
    const char *list = vram__opt_str(o, VRAM__OPT_PROFILES);
    if (*list) {
        char copy[8192];
        vram__strlcpy(copy, list, sizeof(copy));
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d && *n < cap; d = strtok_r(NULL, ":", &save))
            vram__strlcpy(dirs[(*n)++], d, 4096);
    } else {
        if (plan__user_dir(dirs[*n], 4096) == 0)
            (*n)++;
        vram__clear_error();
        shipped_dir(dirs[(*n)++], 4096);
    }
    vram_options_free(own);
    return 0;
}

/* dir/NAME.ini into buf; false when it does not fit. */
static bool profile_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s.ini", dir, name);
    return n > 0 && (size_t)n < cap;
}

static bool names_a_file(const char *name)
{
    size_t n = strlen(name);
    return strchr(name, '/') || (n > 4 && !strcmp(name + n - 4, ".ini"));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorted NAME.ini files of dir; returns how many (0 when unreadable). */
static int list_dir(const char *dir, char names[][PLAN_NAME_MAX], int cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len - 4 < PLAN_NAME_MAX && !strcmp(e->d_name + len - 4, ".ini") &&
            e->d_name[0] != '.') {
            memcpy(names[n], e->d_name, len - 4);
            names[n++][len - 4] = '\0';
        }
    }
    closedir(d);
    qsort(names, (size_t)n, PLAN_NAME_MAX, by_name);
    return n;
}

/* Appends sep and word to buf, as much as fits. */
static void append(char *buf, size_t cap, const char *sep, const char *word)
{
    const char *parts[2] = { sep, word };
    size_t at = strlen(buf);
    for (int i = 0; i < 2; i++)
        for (const char *c = parts[i]; *c && at + 1 < cap; c++)
            buf[at++] = *c;
    buf[at] = '\0';
}

static int not_found(const char *name, char dirs[][4096], int ndirs)
{
    char known[1024] = "", where[1024] = "";
    for (int i = 0; i < ndirs; i++) {
        char names[64][PLAN_NAME_MAX];
        int n = list_dir(dirs[i], names, 64);
        for (int j = 0; j < n; j++)
            if (!strstr(known, names[j]))
                append(known, sizeof(known), *known ? ", " : "", names[j]);
        append(where, sizeof(where), i ? ", " : "", dirs[i]);
    }
    return vram__fail(VRAM_ENOENT, "unknown model '%s' (profiles: %s; searched %s)", name,
                      *known ? known : "none", where);
}

/* Whether hf_ids (space-separated) holds id, case aside (the Hub's ids
 * are not case-sensitive). */
static bool has_hf_id(const char *hf_ids, const char *id)
{
    size_t n = strlen(id);
    for (const char *w = hf_ids; *w;) {
        while (*w == ' ' || *w == '\t')
            w++;
        size_t len = strcspn(w, " \t");
        if (len == n && !strncasecmp(w, id, n))
            return true;
        w += len;
    }
    return false;
}

/* The profile whose [profile] hf_id names the Hugging Face model `id`: the
 * folders in their order, each profile read as data (the id is never a
 * path). */
static int load_by_hf_id(const char *id, char dirs[][4096], int ndirs, vram_profile **out)
{
    for (int i = 0; i < ndirs; i++) {
        char names[128][PLAN_NAME_MAX], path[4200];
        int k = list_dir(dirs[i], names, 128);
        for (int j = 0; j < k; j++) {
            vram_profile *p = NULL;
            if (!profile_path(path, sizeof(path), dirs[i], names[j]) || load_named(path, names[j], &p)) {
                vram__clear_error();
                continue;
            }
            if (has_hf_id(p->hf_id, id)) {
                *out = p;
                return 0;
            }
            vram_profile_free(p);
        }
    }
    char where[1024] = "";
    for (int i = 0; i < ndirs; i++)
        append(where, sizeof(where), i ? ", " : "", dirs[i]);
    return vram__fail(VRAM_ENOENT, "unknown model '%s': no profile names that Hugging Face id "
                      "([profile] hf_id; searched %s); 'vram profiles' lists the models, and a file is "
                      "given as --profile FILE, never as a model", id, where);
}

int vram_profile_load(const vram_options *opts, const char *name, vram_profile **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_profile_load: NULL output");
    *out = NULL;
    if (!name || !*name)
        return vram__fail(VRAM_EINVAL, "no model given (e.g. --model wan2.2-ti2v-5b)");
    /* A name is a name: a path is never followed from one (the daemon loads
     * the model a submitter names); a file is loaded only when the caller
     * says it is one (vram_profile_load_file, --profile FILE). */
    /* A Hugging Face id (OWNER/REPO) is looked up in the profiles' hf_id
     * keys, never opened. */
    size_t len = strlen(name);
    bool hf = !(len > 4 && !strcmp(name + len - 4, ".ini")) && plan__valid_hf_id(name);
    if (!hf && (names_a_file(name) || strstr(name, "..")))
        return vram__fail(VRAM_EINVAL, "'%s' is not a model name (no '/', '..' or '.ini'; or a Hugging "
                          "Face id, OWNER/REPO): give a profile file as --profile FILE", name);
    if (!hf && !plan__valid_name(name))
        return vram__fail(VRAM_ENOENT, "unknown model '%s': a model name is lower-case letters, "
                          "digits, '-', '_' and '.'", name);
    char dirs[8][4096];
    int ndirs;
    int rc = plan__profile_dirs(opts, dirs, 8, &ndirs);
    if (rc)
        return rc;
    if (hf)
        return load_by_hf_id(name, dirs, ndirs, out);
    for (int i = 0; i < ndirs; i++) {
        char path[4200];
        if (profile_path(path, sizeof(path), dirs[i], name) && access(path, F_OK) == 0)
            return load_named(path, name, out);
    }
    return not_found(name, dirs, ndirs);
}

int vram_profile_load_file(const char *path, vram_profile **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_profile_load_file: NULL output");
    *out = NULL;
    if (!path || !*path)
        return vram__fail(VRAM_EINVAL, "no profile file given");
    return load_path(path, out);
}

void vram_profile_free(vram_profile *p)
{
    if (!p)
        return;
    free(p->text);
    free(p);
}

/* ---- listing ------------------------------------------------------------------------ */

static void list_one(vram_profile_entry *e, const char *dir, const char *name)
{
    memset(e, 0, sizeof(*e));
    vram__strlcpy(e->name, name, sizeof(e->name));
    vram_profile *p = NULL;
    if (!profile_path(e->path, sizeof(e->path), dir, name))
        vram__strlcpy(e->error, "path too long", sizeof(e->error));
    else if (load_named(e->path, name, &p))
        vram__strlcpy(e->error, vram_last_error(), sizeof(e->error));
    if (p) {
        vram__strlcpy(e->title, p->title, sizeof(e->title));
        e->calibrated = p->calibrated;
        e->tiers = (unsigned)p->ntier;
    }
    vram_profile_free(p);
}

/* Whether name.ini is in a folder before `upto`, or (into buf) after it. */
static bool found_in(char dirs[][4096], int from, int upto, const char *name, char *buf, size_t cap)
{
    for (int i = from; i < upto; i++)
        if (profile_path(buf, cap, dirs[i], name) && access(buf, F_OK) == 0)
            return true;
    buf[0] = '\0';
    return false;
}

int vram_profile_list(const vram_options *opts, vram_profile_entry **out, size_t *count_out)
{
    if (!out || !count_out)
        return vram__fail(VRAM_EINVAL, "vram_profile_list: NULL output");
    *out = NULL;
    *count_out = 0;
    char dirs[8][4096];
    int ndirs;
    int rc = plan__profile_dirs(opts, dirs, 8, &ndirs);
    if (rc)
        return rc;
    size_t n = 0, cap = 0;
    vram_profile_entry *list = NULL;
    for (int i = 0; i < ndirs; i++) {
        char names[128][PLAN_NAME_MAX], path[4200];
        int k = list_dir(dirs[i], names, 128);
        for (int j = 0; j < k; j++) {
            if (found_in(dirs, 0, i, names[j], path, sizeof(path)))
                continue;           /* an earlier folder's file of that name wins */
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                vram_profile_entry *grown = realloc(list, cap * sizeof(*grown));
                if (!grown) {
                    free(list);
                    return vram__fail(VRAM_ENOMEM, "out of host memory listing profiles");
                }
                list = grown;
            }
            list_one(&list[n], dirs[i], names[j]);
            found_in(dirs, i + 1, ndirs, names[j], list[n].shadows, sizeof(list[n].shadows));
            n++;
        }
    }
    vram__clear_error();
    *out = list;
    *count_out = n;
    return 0;
}

int vram_profile_list_json(const vram_options *opts, char **json_out)
{
    if (!json_out)
        return vram__fail(VRAM_EINVAL, "vram_profile_list_json: NULL output");
    *json_out = NULL;
    vram_profile_entry *e;
    size_t n;
    int rc = vram_profile_list(opts, &e, &n);
    if (rc)
        return rc;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        vram__json_object_begin(&j);
        vram__json_field_string(&j, "name", e[i].name);
        vram__json_field_string(&j, "title", e[i].title);
        vram__json_field_string(&j, "path", e[i].path);
        vram__json_field_bool(&j, "calibrated", e[i].calibrated);
        vram__json_field_uint(&j, "tiers", e[i].tiers);
        vram__json_key(&j, "shadows");
        if (e[i].shadows[0])
            vram__json_string(&j, e[i].shadows);
        else
            vram__json_null(&j);
        if (e[i].error[0])
            vram__json_field_string(&j, "error", e[i].error);
        vram__json_object_end(&j);
    }
    vram__json_array_end(&j);
    free(e);
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

const char *vram_profile_name(const vram_profile *p)
{
    return p ? p->name : "";
}

const char *vram_profile_title(const vram_profile *p)
{
    return p ? p->title : "";
}

const char *vram_profile_path(const vram_profile *p)
{
    return p ? p->path : "";
}

int vram_profile_is_calibrated(const vram_profile *p)
{
    return p && p->calibrated;
}

size_t vram_profile_tier_count(const vram_profile *p)
{
    return p ? (size_t)p->ntier : 0;
}

/* "k=v k=v" of a settings list, like snprintf. */
static int settings_text(const plan_settings *s, char *buf, size_t cap)
{
    size_t at = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        int w = snprintf(cap > at ? buf + at : NULL, cap > at ? cap - at : 0, "%s%s", i ? " " : "",
                         s->kv[i]);
        at += (size_t)(w > 0 ? w : 0);
    }
    return (int)at;
}

int vram_profile_tier(const vram_profile *p, size_t i, const char **name_out, char *settings,
                      size_t cap)
{
    if (!p || i >= (size_t)p->ntier)
        return VRAM_ENOENT;
    if (name_out)
        *name_out = p->tier[i].name;
    return settings ? settings_text(&p->tier[i].set, settings, cap) : 0;
}

size_t vram_profile_ladder_count(const vram_profile *p)
{
    return p ? (size_t)p->nrung : 0;
}

int vram_profile_ladder_rung(const vram_profile *p, size_t i, char *buf, size_t cap)
{
    if (!p || i >= (size_t)p->nrung)
        return VRAM_ENOENT;
    return settings_text(&p->rung[i], buf, cap);
}

int vram_profile_ladder_text(const vram_profile *p, char *buf, size_t cap)
{
    if (!p)
        return VRAM_EINVAL;
    size_t at = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < p->nrung; i++) {
        if (i) {
            if (at + 2 < cap)
                memcpy(buf + at, "; ", 3);
            at += 2;
        }
        at += (size_t)settings_text(&p->rung[i], cap > at ? buf + at : NULL, cap > at ? cap - at : 0);
    }
    return (int)at;
}
