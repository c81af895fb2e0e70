/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_sock.c - the daemon's socket: one daemon per path,
 * stale files replaced, owner-only permissions, peer credentials, lines.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "wire/sock.h"

static char dir[64], path[128];

static void fresh(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vram-sock-%d-XXXXXX", (int)getpid());
    mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/sub/vramd.sock", dir);
}

TEST(one_daemon_per_path_and_stale_files_are_replaced)
{
    fresh();
    int l1, l2, c;
    CHECK_OK(vram__sock_listen(path, NULL, &l1));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_ERR(vram__sock_listen(path, NULL, &l2), VRAM_EBUSY);
    CHECK_CONTAINS(vram_last_error(), "a daemon already runs");
    close(l1);                                   /* dies without unlinking */
    CHECK(stat(path, &st) == 0);
    CHECK_ERR(vram__sock_connect(path, &c), VRAM_ENOENT);
    CHECK_CONTAINS(vram_last_error(), "no daemon answers");
    CHECK_OK(vram__sock_listen(path, NULL, &l2)); /* the stale file is replaced */
    close(l2);
    unlink(path);
}

TEST(refuses_to_replace_what_is_not_a_socket)
{
    fresh();
    char file[160];
    snprintf(file, sizeof(file), "%s/plain", dir);
    FILE *f = fopen(file, "w");
    fputs("keep me", f);
    fclose(f);
    int l;
    CHECK_ERR(vram__sock_listen(file, NULL, &l), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "not a socket");
    CHECK(access(file, F_OK) == 0);
    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    CHECK_ERR(vram__sock_listen(longp, NULL, &l), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "too long");
    CHECK_ERR(vram__sock_listen(path, "no-such-group-vram", &l), VRAM_EINVAL);
}

TEST(peer_credentials_and_lines)
{
    fresh();
    int l, c;
    CHECK_OK(vram__sock_listen(path, NULL, &l));
    CHECK_OK(vram__sock_connect(path, &c));
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    uint32_t pid, uid;
    CHECK_OK(vram__sock_peer(s, &pid, &uid));
    CHECK_EQ(pid, (uint32_t)getpid());
    CHECK_EQ(uid, (uint32_t)getuid());
    CHECK_OK(vram__sock_send_all(s, "first\nsecond\npart", 17));
    vram__buf pending;
    vram__buf_init(&pending);
    char *line;
    CHECK_OK(vram__sock_read_line(c, &pending, 1000, &line));
    CHECK_STR_EQ(line, "first");
    free(line);
    CHECK_OK(vram__sock_read_line(c, &pending, 1000, &line));
    CHECK_STR_EQ(line, "second");
    free(line);
    CHECK_ERR(vram__sock_read_line(c, &pending, 50, &line), VRAM_ETIMEDOUT);
    CHECK_OK(vram__sock_send_all(s, "ial\n", 4));
    CHECK_OK(vram__sock_read_line(c, &pending, 1000, &line));
    CHECK_STR_EQ(line, "partial");
    free(line);
    close(s);
    CHECK_ERR(vram__sock_read_line(c, &pending, 1000, &line), VRAM_EIO);
    vram__buf_free(&pending);
    close(c);
    close(l);
    unlink(path);
}
