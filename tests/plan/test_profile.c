/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_profile.c - profiles: every shipped one loads and is
 * complete; mistakes in a profile are reported as file:line; the search
 * folders, listing, and a calibrated copy shadowing a shipped one.
 */
#include "plan_test.h"

/* A small, complete profile; the tests break one thing at a time. */
static const char good[] =
    "# a test profile\n"
    "[profile]\n"
    "name = tiny\n"
    "title = a tiny test model\n"
    "source = tests\n"
    "\n"
    "[defaults]\n"
    "resolution = 256px\n"
    "frames = 9\n"
    "steps = 10\n"
    "\n"
    "[latent]\n"
    "stride = 4x8x8\n"
    "patch = 1x2x2\n"
    "causal = yes\n"
    "\n"
    "[overhead]\n"
    "cuda_context = 100MiB\n"
    "slack = 10%\n"
    "margin = 5%\n"
    "\n"
    "[time]\n"
    "card = test card\n"
    "bandwidth = 10GB\n"
    "\n"
    "[component net]\n"
    "params = 1B\n"
    "dtype = bf16\n"
    "precision = follow\n"
    "stages = denoise\n"
    "blocks = 10\n"
    "\n"
    "[stage denoise]\n"
    "runs = step\n"
    "act = 1MiB\n"
    "act_per_token = 1KiB\n"
    "time_per_token = 1e-6\n"
    "\n"
    "[tier small]\n"
    "resolution = 128px\n"
    "\n"
    "[ladder]\n"
    "rung = memory=sequential\n"
    "rung = resolution=128px frames=5\n"
    "\n"
    "[lever memory]\n"
    "values = lightweight, sequential\n"
    "quality = 0, 0\n"
    "level = basic\n"
    "reason = offload\n";

/* Loads text as NAME.ini and returns the error code; the message is in
 * vram_last_error(). */
static int load_text(const char *file, const char *text, vram_profile **out)
{
    const char *path = write_file(file, text);
    return vram_profile_load_file(path, out);
}

/* good with `from` replaced by `to` (first occurrence). */
static const char *edited(const char *from, const char *to)
{
    static char buf[4096];
    const char *at = strstr(good, from);
    if (!at)
        return NULL;
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    return buf;
}

TEST(every_shipped_profile_loads_and_is_complete)
{
    for (size_t i = 0; i < NSHIPPED; i++) {
        vram_profile *p = load_shipped(shipped[i]);
        CHECK_MSG(p, "%s: %s", shipped[i], vram_last_error());
        CHECK_STR_EQ(vram_profile_name(p), shipped[i]);
        CHECK(strstr(vram_profile_path(p), "/profiles/") != NULL);
        CHECK_MSG(p->ncomp >= 2 && p->nstage >= 2, "%s: components and stages", shipped[i]);
        CHECK_MSG(vram_profile_tier_count(p) >= 2, "%s has tiers", shipped[i]);
        CHECK_MSG(vram_profile_ladder_count(p) >= 3, "%s has a ladder", shipped[i]);
        CHECK_MSG(p->nlever >= 3, "%s has levers", shipped[i]);
        bool follows = false;
        for (int c = 0; c < p->ncomp; c++) {
            follows |= p->comp[c].follows;
            CHECK_MSG(p->comp[c].blocks >= 3, "%s: %s streams in blocks", shipped[i], p->comp[c].name);
        }
        CHECK_MSG(follows, "%s: a component follows the precision setting", shipped[i]);
        CHECK(!vram_profile_is_calibrated(p));
        vram_profile_free(p);
    }
}

TEST(hunyuanvideo_avatar_has_the_seven_tiers_of_the_table)
{
    static const char *const names[] = { "emergency", "ultra-minimal", "ultra-low", "low",
                                         "balanced", "high-performance", "maximum-quality" };
    static const char *const sizes[] = { "resolution=96px", "resolution=128px", "resolution=256px",
                                         "resolution=384px", "resolution=512px", "resolution=704px",
                                         "resolution=1024px" };
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    CHECK_EQ(vram_profile_tier_count(p), 7);
    for (size_t i = 0; i < 7; i++) {
        const char *name;
        char set[256];
        CHECK(vram_profile_tier(p, i, &name, set, sizeof(set)) >= 0);
        CHECK_STR_EQ(name, names[i]);
        CHECK_CONTAINS(set, sizes[i]);
    }
    const char *name;
    CHECK_ERR(vram_profile_tier(p, 7, &name, NULL, 0), VRAM_ENOENT);
    vram_profile_free(p);
}

TEST(a_good_profile_loads_with_its_values)
{
    vram_profile *p;
    CHECK_OK(load_text("tiny.ini", good, &p));
    CHECK_STR_EQ(p->name, "tiny");
    CHECK_EQ(p->base.width, 256);
    CHECK_EQ(p->base.frames, 9);
    CHECK_NEAR(p->context_bytes, 100.0 * 1024 * 1024, 0.5);
    CHECK_NEAR(p->slack, 0.10, 1e-12);
    CHECK_NEAR(p->comp[0].params, 1e9, 1);
    CHECK_NEAR(p->stage[0].act[PLAN_F_TOKEN], 1024, 1e-9);
    CHECK_EQ(p->stage[0].act_line[PLAN_F_TOKEN], 36);
    char ladder[256];
    CHECK(vram_profile_ladder_text(p, ladder, sizeof(ladder)) > 0);
    CHECK_STR_EQ(ladder, "memory=sequential; resolution=128px frames=5");
    char rung[64];
    CHECK_EQ(vram_profile_ladder_rung(p, 1, rung, sizeof(rung)), (int)strlen("resolution=128px frames=5"));
    CHECK_ERR(vram_profile_ladder_rung(p, 2, rung, sizeof(rung)), VRAM_ENOENT);
    vram_profile_free(p);
}

/* Each broken variant is refused as "path:line: what". */
TEST(mistakes_are_reported_at_their_line)
{
    static const struct {
        const char *from, *to, *line, *what;
    } cases[] = {
        { "dtype = bf16\n", "", ":26:", "[component net] has no 'dtype'" },
        { "runs = step\n", "", ":33:", "[stage denoise] has no 'runs'" },
        { "cuda_context = 100MiB\n", "", ":17:", "[overhead] has no 'cuda_context'" },
        { "cuda_context = 100MiB", "cuda_context = 100MiBB", ":18:", "unknown unit 'MiBB'" },
        { "act_per_token = 1KiB", "act_per_tokn = 1KiB", ":36:", "unknown key 'act_per_tokn'" },
        { "slack = 10%", "slack = 10", ":19:", "'10' is not a percent" },
        { "params = 1B", "params = lots", ":27:", "not a parameter count" },
        { "stages = denoise", "stages = denose", ":30:", "no [stage denose]" },
        { "resolution = 128px", "resolution = 128y128", ":40:", "resolution '128y128'" },
        { "rung = memory=sequential", "rung = memory=gigantic", ":43:", "'gigantic' is not one of" },
        { "frames = 9\n", "frames = 9\nframes = 10\n", ":10:", "'frames' given twice" },
        { "[time]", "[times]", ":22:", "unknown section [times]" },
        { "stride = 4x8x8", "stride = 4x8", ":13:", "not TxHxW" },
        { "level = basic", "level = extreme", ":49:", "not basic, balanced or maximum" },
        { "blocks = 10\n", "blocks = 10\n  extra\n", ":32:", "continues 'blocks'" },
        { "runs = step", "runs = step\nact = 1MiB\nact = 2MiB", ":36:", "'act' given twice" },
        { "name = tiny", "name = Tiny Model", ":3:", "is not a name" },
        { "source = tests\n", "source = tests\nhf_id = org/ok ../etc\n", ":6:",
          "'../etc' is not a Hugging Face model id" },
        { "source = tests\n", "source = tests\nhf_id = a/b/c\n", ":6:", "not a Hugging Face model id" },
        { "steps = 10", "steps = 1000000000", ":10:", "absurd" },
        /* Finite before the unit, infinite after: an infinite coefficient
         * times an input of zero is NaN, which no comparison sees. */
        { "act = 1MiB", "act = 1e300TiB", ":35:", "not a finite number of bytes" },
        { "bandwidth = 10GB", "bandwidth = 0x10GB", ":24:", "not a non-negative number of bytes" },
        { "time_per_token = 1e-6", "time_per_token = 0x1p-20", ":37:", "is not a number" },
        { "params = 1B", "params = infB", ":27:", "not a parameter count" },
        { "blocks = 10", "blocks = 2.9", ":31:", "'2.9' is not a whole number" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *text = edited(cases[i].from, cases[i].to);
        CHECK_MSG(text, "case %zu: '%s' not in the good profile", i, cases[i].from);
        vram_profile *p = (vram_profile *)1;
        int rc = load_text("broken.ini", text, &p);
        CHECK_MSG(rc == VRAM_EPARSE, "case %zu (%s): %s, %s", i, cases[i].what, vram_errname(rc),
                  vram_last_error());
        CHECK(p == NULL);
        CHECK_CONTAINS(vram_last_error(), "broken.ini");
        CHECK_CONTAINS(vram_last_error(), cases[i].line);
        CHECK_CONTAINS(vram_last_error(), cases[i].what);
    }
}

TEST(a_missing_section_and_an_overlong_line)
{
    vram_profile *p;
    const char *no_time = edited("[time]\ncard = test card\nbandwidth = 10GB\n", "");
    CHECK_ERR(load_text("notime.ini", no_time, &p), VRAM_EPARSE);
    CHECK_CONTAINS(vram_last_error(), "notime.ini:1: no [time] section");
    char longline[600];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "title = ", 8);
    longline[sizeof(longline) - 1] = '\0';
    char text[5000];
    const char *base = edited("title = a tiny test model", longline);
    vram__strlcpy(text, base, sizeof(text));
    CHECK_ERR(load_text("long.ini", text, &p), VRAM_EPARSE);
    CHECK_CONTAINS(vram_last_error(), "long.ini:4: line longer than");
    CHECK_ERR(load_text("syntax.ini", edited("[latent]", "[latent"), &p), VRAM_EPARSE);
    CHECK_CONTAINS(vram_last_error(), "syntax.ini:12:");
}

TEST(comments_and_continuations)
{
    vram_profile *p;
    const char *text = edited("reason = offload\n", "reason = offload ; inline comment\n"
                                                    "  to the host\n# a comment\n; another\n");
    CHECK_OK(load_text("comments.ini", text, &p));
    CHECK_STR_EQ(p->lever[0].reason, "offload to the host");
    vram_profile_free(p);
}

TEST(unknown_model_lists_the_known_ones)
{
    vram_profile *p = (vram_profile *)1;
    scratch_dir();
    CHECK_ERR(vram_profile_load(NULL, "wan9", &p), VRAM_ENOENT);
    CHECK(p == NULL);
    CHECK_CONTAINS(vram_last_error(), "unknown model 'wan9'");
    CHECK_CONTAINS(vram_last_error(), "hunyuanvideo-avatar");
    /* A name is never a path (issue 10: a model of ../../../../etc/passwd
     * was read, and its first word shown). */
    CHECK_ERR(vram_profile_load(NULL, "../../../../etc/passwd", &p), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "is not a model name");
    CHECK_CONTAINS(vram_last_error(), "--profile FILE");
    CHECK_ERR(vram_profile_load(NULL, "/etc/passwd", &p), VRAM_EINVAL);
    CHECK_ERR(vram_profile_load(NULL, "a..b", &p), VRAM_EINVAL);
    CHECK_ERR(vram_profile_load(NULL, "tiny.ini", &p), VRAM_EINVAL);
    CHECK_ERR(vram_profile_load(NULL, "Bad Name", &p), VRAM_ENOENT);
    CHECK_ERR(vram_profile_load(NULL, "", &p), VRAM_EINVAL);
}

TEST(the_profiles_option_orders_the_folders)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    char dir[600], other[600];
    snprintf(dir, sizeof(dir), "%s/mine", scratch_dir());
    mkdir(dir, 0755);
    snprintf(other, sizeof(other), "%s/tiny.ini", dir);
    FILE *f = fopen(other, "w");
    CHECK(f);
    fputs(good, f);
    fclose(f);
    snprintf(other, sizeof(other), "%s:/nonexistent", dir);
    CHECK_OK(vram_options_set(o, "profiles", other, NULL));
    vram_profile *p;
    CHECK_OK(vram_profile_load(o, "tiny", &p));
    vram_profile_free(p);
    CHECK_ERR(vram_profile_load(o, "sadtalker", &p), VRAM_ENOENT);
    vram_profile_entry *e;
    size_t n;
    CHECK_OK(vram_profile_list(o, &e, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(e[0].name, "tiny");
    CHECK_EQ(e[0].tiers, 1);
    vram_free(e);
    vram_options_free(o);
}

/* Issue 15: a Hugging Face id finds the profile that names it in hf_id,
 * case aside; an id is looked up, never opened as a path. */
TEST(a_hugging_face_id_finds_its_profile)
{
    char dir[600], path[700];
    snprintf(dir, sizeof(dir), "%s/Wan-AI", scratch_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/Wan2.2-TI2V-5B", dir);
    FILE *f = fopen(path, "w");     /* a file where the id would lead as a path */
    CHECK(f);
    fputs("[profile]\nname = trap\n", f);
    fclose(f);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof(cwd)));
    CHECK(chdir(scratch_dir()) == 0);
    static const char *const ids[] = { "Wan-AI/Wan2.2-TI2V-5B", "wan-ai/wan2.2-ti2v-5b",
                                       "Wan-AI/Wan2.2-TI2V-5B-Diffusers" };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(ids); i++) {
        vram_profile *p = NULL;
        CHECK_MSG(vram_profile_load(NULL, ids[i], &p) == 0, "%s: %s", ids[i], vram_last_error());
        CHECK_STR_EQ(p ? p->name : "", "wan2.2-ti2v-5b");
        vram_profile_free(p);
    }
    vram_profile *p = NULL;
    CHECK_OK(vram_profile_load(NULL, "Wan-AI/Wan2.2-T2V-A14B", &p));
    CHECK_STR_EQ(p->name, "wan2.2-t2v-a14b");
    CHECK_CONTAINS(p->hf_id, "Wan-AI/Wan2.2-T2V-A14B");
    vram_profile_free(p);
    p = (vram_profile *)1;
    CHECK_ERR(vram_profile_load(NULL, "Wan-AI/Wan9", &p), VRAM_ENOENT);
    CHECK(p == NULL);
    CHECK_CONTAINS(vram_last_error(), "no profile names that Hugging Face id");
    CHECK_ERR(vram_profile_load(NULL, "Wan-AI/../x", &p), VRAM_EINVAL);
    CHECK_ERR(vram_profile_load(NULL, "Wan-AI/x.ini", &p), VRAM_EINVAL);
    CHECK_ERR(vram_profile_load(NULL, "a/b/c", &p), VRAM_EINVAL);
    CHECK(chdir(cwd) == 0);
    CHECK(plan__valid_hf_id("tencent/HunyuanVideo-Avatar"));
    CHECK(!plan__valid_hf_id("/abs"));
    CHECK(!plan__valid_hf_id("trailing/"));
    CHECK(!plan__valid_hf_id("sp ace/x"));
}

TEST(the_default_list_has_every_shipped_profile)
{
    scratch_dir();
    vram_profile_entry *e;
    size_t n;
    CHECK_OK(vram_profile_list(NULL, &e, &n));
    for (size_t i = 0; i < NSHIPPED; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found |= !strcmp(e[k].name, shipped[i]) && !e[k].error[0];
        CHECK_MSG(found, "%s listed", shipped[i]);
    }
    vram_free(e);
    char *json;
    CHECK_OK(vram_profile_list_json(NULL, &json));
    CHECK_CONTAINS(json, "\"name\":\"wan2.2-ti2v-5b\"");
    vram_free(json);
}

TEST(show_describes_components_tiers_ladder_and_levers)
{
    vram_profile *p = load_shipped("hunyuanvideo-avatar");
    CHECK(p);
    char *text, *json;
    CHECK_OK(vram_profile_describe(p, &text));
    CHECK_CONTAINS(text, "maximum-quality");
    CHECK_CONTAINS(text, "transformer");
    CHECK_CONTAINS(text, "ladder");
    CHECK_CONTAINS(text, "optimizer levers");
    CHECK_OK(vram_profile_to_json(p, &json));
    CHECK_CONTAINS(json, "\"tier\":\"emergency\"");
    CHECK_CONTAINS(json, "\"least_peak_bytes\":");
    vram_free(text);
    vram_free(json);
    vram_profile_free(p);
}
