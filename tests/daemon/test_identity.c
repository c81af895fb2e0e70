/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_identity.c - whom a root vramd runs a job as
 * (vramd_identity_of): the account database is asked once for a user
 * however many of their jobs start (it can be slow: LDAP, sssd; vramd asks
 * on its loop), a user who does not exist is asked about each time, and
 * what is kept is what the database said.  getpwuid_r is counted here, in
 * front of libc's.
 */
#include <dlfcn.h>
#include <pwd.h>
#include <unistd.h>

#include "test.h"
#include "daemon/daemon.h"

static int lookups;

int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t cap, struct passwd **found)
{
    static int (*real)(uid_t, struct passwd *, char *, size_t, struct passwd **);
    if (!real)
        real = (int (*)(uid_t, struct passwd *, char *, size_t, struct passwd **))dlsym(RTLD_NEXT, "getpwuid_r");
    __atomic_add_fetch(&lookups, 1, __ATOMIC_RELAXED);
    return real(uid, pw, buf, cap, found);
}

/* A user other than root that this machine has, or NULL. */
static const struct passwd *someone(void)
{
    static const char *names[] = { "daemon", "nobody", "bin", "sys" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct passwd *pw = getpwnam(names[i]);
        if (pw && pw->pw_uid != 0)
            return pw;
    }
    return NULL;
}

TEST(a_user_is_looked_up_once_for_many_jobs)
{
    if (geteuid() != 0)
        TEST_SKIP("only a root vramd looks users up (this test runs as uid %u)", (unsigned)geteuid());
    const struct passwd *pw = someone();
    if (!pw)
        TEST_SKIP("no user but root on this machine");
    uint32_t uid = pw->pw_uid;
    char name[64];
    snprintf(name, sizeof(name), "%s", pw->pw_name);
    vramd_identity first, again;
    int before = lookups;
    CHECK_OK(vramd_identity_of(uid, &first));
    CHECK_EQ(lookups, before + 1);
    CHECK(first.change);
    CHECK_STR_EQ(first.name, name);
    for (int i = 0; i < 100; i++)
        CHECK_OK(vramd_identity_of(uid, &again));
    CHECK_EQ(lookups, before + 1);              /* kept: not asked again */
    CHECK(memcmp(&first, &again, sizeof(first)) == 0);
}

TEST(a_missing_user_is_asked_about_each_time)
{
    if (geteuid() != 0)
        TEST_SKIP("only a root vramd looks users up (this test runs as uid %u)", (unsigned)geteuid());
    uint32_t uid = 3999999917u;                 /* no one */
    CHECK(getpwuid(uid) == NULL);
    vramd_identity id;
    int before = lookups;
    CHECK_EQ(vramd_identity_of(uid, &id), VRAM_EPERM);
    CHECK_CONTAINS(vram_last_error(), "no such user");
    CHECK_EQ(vramd_identity_of(uid, &id), VRAM_EPERM);
    CHECK_EQ(lookups, before + 2);              /* a failure is not kept */
}

TEST(root_and_the_daemons_own_user_need_no_lookup)
{
    vramd_identity id;
    int before = lookups;
    CHECK_OK(vramd_identity_of((uint32_t)geteuid(), &id));
    CHECK(!id.change);
    CHECK_EQ(lookups, before);
}
