/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_versions.c - growing input structs carry a version: the
 * INIT macros set the one this header describes, a zeroed struct counts as
 * version 1, and a version newer than the library's is refused, naming the
 * struct, by every call that takes one.
 */
#include "../sched/sched_test.h"
#include "test.h"

static int nothing(vram_task_call *call)
{
    (void)call;
    return VRAM_TASK_OK;
}

TEST(init_macros_set_the_current_version_and_zero_counts_as_one)
{
    vram_task t = VRAM_TASK_INIT;
    vram_lease_request q = VRAM_LEASE_REQUEST_INIT;
    vram_job_spec j = VRAM_JOB_SPEC_INIT;
    vram_submit s = VRAM_SUBMIT_INIT;
    vram_daemon_config d = VRAM_DAEMON_CONFIG_INIT;
    vram_ledger_config lc = VRAM_LEDGER_CONFIG_INIT;
    vram_sched_config sc = VRAM_SCHED_CONFIG_INIT;
    CHECK_EQ(t.version, VRAM_TASK_VERSION);
    CHECK_EQ(t.device, VRAM_DEVICE_ANY);
    CHECK_EQ(t.wait_ms, VRAM_WAIT_FOREVER);
    CHECK_EQ(q.version, VRAM_LEASE_REQUEST_VERSION);
    CHECK_EQ(q.device, VRAM_DEVICE_ANY);
    CHECK_EQ(j.version, VRAM_JOB_SPEC_VERSION);
    CHECK_EQ(j.device, -1);
    CHECK_EQ(s.version, VRAM_SUBMIT_VERSION);
    CHECK_EQ(d.version, VRAM_DAEMON_CONFIG_VERSION);
    CHECK_EQ(d.stop_fd, -1);
    CHECK_EQ(lc.version, VRAM_LEDGER_CONFIG_VERSION);
    CHECK_EQ(sc.version, VRAM_SCHED_CONFIG_VERSION);

    vram_ctx *ctx = open_sim("A:24GiB,B:24GiB", NULL);
    CHECK(ctx);
    lc.interval_ms = 3600000;
    vram_ledger *l;
    CHECK_OK(vram_ledger_open(ctx, &lc, &l));
    q.bytes = GiB;
    q.wait_ms = 0;
    vram_lease_info info;
    CHECK_OK(vram_lease_acquire(l, &q, &info));
    CHECK_OK(vram_lease_release(l, info.id));
    vram_lease_request zeroed = { .bytes = GiB, .device = VRAM_DEVICE_ANY };
    CHECK_OK(vram_lease_acquire(l, &zeroed, &info));
    CHECK_OK(vram_lease_release(l, info.id));

    sc.workers = 1;
    vram_sched *s1;
    CHECK_OK(vram_sched_open(l, &sc, &s1));
    t.fn = nothing;
    t.bytes = GiB;
    CHECK_OK(vram_sched_submit(s1, &t, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(s1, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
    CHECK_OK(vram_sched_close(s1));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(a_newer_version_is_refused_by_every_call)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    CHECK(ctx);
    vram_ledger_config lc = { .version = VRAM_LEDGER_CONFIG_VERSION + 1 };
    vram_ledger *l;
    CHECK_ERR(vram_ledger_open(ctx, &lc, &l), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_ledger_config version 2");
    lc.version = 0;
    lc.interval_ms = 3600000;
    CHECK_OK(vram_ledger_open(ctx, &lc, &l));

    vram_lease_request q = VRAM_LEASE_REQUEST_INIT;
    q.version++;
    q.bytes = GiB;
    vram_lease_info info;
    CHECK_ERR(vram_lease_acquire(l, &q, &info), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_lease_request version 2");
    CHECK_CONTAINS(vram_last_error(), "built against a newer vram.h");
    q.device = 0;
    CHECK_ERR(vram_lease_adopt(l, &q, &info), VRAM_EINVAL);

    vram_sched_config sc = { .version = VRAM_SCHED_CONFIG_VERSION + 1, .workers = 1 };
    vram_sched *s;
    CHECK_ERR(vram_sched_open(l, &sc, &s), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_sched_config version 2");
    sc.version = VRAM_SCHED_CONFIG_VERSION;
    CHECK_OK(vram_sched_open(l, &sc, &s));
    vram_task t = VRAM_TASK_INIT;
    t.version++;
    t.fn = nothing;
    t.bytes = GiB;
    CHECK_ERR(vram_sched_submit(s, &t, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_task version 2");
    CHECK_OK(vram_sched_close(s));
    CHECK_OK(vram_ledger_close(l));

    char *argv[] = { "true", NULL };
    vram_job_spec j = VRAM_JOB_SPEC_INIT;
    j.version++;
    j.argv = argv;
    j.vram_bytes = GiB;
    vram_job_result res;
    CHECK_ERR(vram_job_run(ctx, &j, &res), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_job_spec version 3");

    vram_daemon_config d = VRAM_DAEMON_CONFIG_INIT;
    d.version++;
    CHECK_ERR(vram_daemon_run(&d), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "vram_daemon_config version 2");
    CHECK_OK(vram_ctx_close(ctx));
}
