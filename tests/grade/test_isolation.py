"""A submission sees nothing but itself (issue 17): the sandbox's view, PID namespace and
environment, and a class with a submission that tries to read and reach what is not hers.

The sandbox tests run `python -m conformance.grade.sandbox --isolate` on a shell command and look
at what it saw; the grading test grades `alice` beside `mallory`, who tries, in her build and
at her server's start, every way of reading another student's work, the grader's command
line, environment, output and config, of writing outside her work directory and of reaching
the network, and prints what she got after a `STOLEN` marker. Her attempts must all fail,
alice's grade must not change, and nothing of hers may be left running (the guard in
conftest.py checks too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conformance.harness.polling import wait_until
from tests.conftest import ROOT, kit

CLASS = ROOT / "examples" / "class"
#: A uid no one uses, for the sandbox tests (the grader's slots start at 62000).
TEST_UID = 62990
#: Seconds any sandboxed command here may take.
RUN_TIMEOUT = 30.0


def _kernel_allows_namespaces() -> bool:
    """Can util-linux (not the code under test) make mount and PID namespaces here? Not in a
    container without CAP_SYS_ADMIN, for one."""
    argv = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not _kernel_allows_namespaces(),
    reason="needs root, on a kernel that allows mount and PID namespaces",
)
needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make"
)
#: How long mallory's processes may take to die once her grading ended (they are SIGKILLed).
LEFTOVER_WAIT = 5.0


def sandboxed(work: Path, script: str, *options: str, env: dict[str, str] | None = None):
    """Run `sh -c script` isolated in `work`; (status, stdout, stderr)."""
    argv = [sys.executable, "-m", "conformance.grade.sandbox", "--isolate", str(work), *options]
    done = subprocess.run(
        [*argv, "--", "/bin/sh", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def work() -> Iterator[Path]:
    """A work directory any user may enter (tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="conformance-isolation-test-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the sandbox ------------------------------------------------------------------------------
@needs_root
def test_the_view_holds_the_system_the_work_directory_and_nothing_else(work: Path) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    env = dict(os.environ, GRADER_SECRET=secret)
    script = (
        "ls /; echo ---; ls /proc | grep -c '^[0-9]'; echo ---; tr '\\0' ' ' < /proc/1/cmdline;"
        " echo; echo ---; cat /proc/1/environ; env; echo ---; echo hi > mine;"
        " touch /usr/escape /etc/escape; echo tmp > /tmp/private; ls /tmp"
    )
    code, out, err = sandboxed(work, script, "--uid", str(TEST_UID), env=env)
    assert code == 0, err
    top, count, init, environment, tmp = out.split("---\n")
    assert set(top.split()) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32"} | {
        "proc", "sbin", "tmp", "usr",
    }  # fmt: skip
    assert int(count) <= 4, "the shell, ls, grep and the init, not the machine's processes"
    assert init.split() == ["conformance-sandbox-init"]
    assert secret not in out and "GRADER_SECRET" not in out
    assert f"HOME={work}" in environment
    assert "Permission denied" in err  # the init's environment
    assert err.count("Read-only file system") == 2
    assert (work / "mine").read_text() == "hi\n"
    assert sorted(tmp.split()) == sorted([work.name, "private"])  # its own path, its file
    assert not Path("/tmp/private").exists()


@needs_root
def test_the_exit_status_and_signals_are_the_submissions(work: Path) -> None:
    assert sandboxed(work, "exit 3")[0] == 3
    assert sandboxed(work, "kill -SEGV $$")[0] == -signal.SIGSEGV
    # SIGTERM to the launched pid reaches the submission, whose handler runs.
    argv = [sys.executable, "-m", "conformance.grade.sandbox", "--isolate", str(work), "--"]
    script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"
    with subprocess.Popen(
        [*argv, "/bin/sh", "-c", script], cwd=work, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(RUN_TIMEOUT) == 7
        assert proc.stdout.read() == "got TERM\n"


@needs_root
def test_leftovers_outlive_the_submission_but_not_a_kill_of_the_launched_pid(work: Path) -> None:
    """As outside: a server that exits leaving a child has a child still running (EXIT-5
    sees it); SIGKILL to the launched process group ends the whole namespace."""
    argv = [sys.executable, "-m", "conformance.grade.sandbox", "--isolate", str(work), "--"]
    script = "sleep 60 & exit 0"
    with subprocess.Popen(
        [*argv, "/bin/sh", "-c", script],
        cwd=work,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        assert proc.wait(RUN_TIMEOUT) == 0

        def group() -> list[psutil.Process]:
            return [p for p in psutil.process_iter(["cmdline"]) if _in_group(p, proc.pid)]

        def names() -> list[str]:
            return sorted(" ".join(filter(None, p.info["cmdline"])) for p in group())

        # The shell's child may not have exec'd sleep yet when the shell exits: look until it
        # has (it then shows as `sleep 60`), not once.
        both, _ = wait_until(
            lambda: names() == ["conformance-sandbox-init", "sleep 60"], RUN_TIMEOUT
        )
        assert both, f"both still running, not {names()}"
        members = group()
        os.killpg(proc.pid, signal.SIGKILL)  # the init is in the group: the namespace ends
        # The init outlived the launched pid, so this process (a subreaper) adopted it: the
        # wait reaps it.
        _, alive = psutil.wait_procs(members, timeout=RUN_TIMEOUT)
        assert not alive


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the sandbox as nobody, which needs root")
def test_not_root_the_view_comes_from_a_user_namespace(work: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    probe = subprocess.run(
        [*nobody, "unshare", "--user", "--map-current-user", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("this kernel does not allow unprivileged user namespaces")
    # nobody must be able to run this interpreter and import the kit from where it is installed
    # (not so when the checkout or a tox environment sits under a directory only root reads).
    probe_import = [*nobody, sys.executable, "-c", "import conformance.grade.sandbox"]
    runs = subprocess.run(probe_import, capture_output=True, cwd=work)
    if runs.returncode != 0:
        pytest.skip(
            f"nobody cannot run this interpreter or import the kit ({sys.executable}: "
            f"{runs.stderr.decode(errors='replace').strip()[:120]})"
        )
    argv = [sys.executable, "-m", "conformance.grade.sandbox", "--isolate", str(work), "--"]
    script = "id -u; ls /; ls /proc | grep -c '^[0-9]'; touch /usr/escape; echo hi > mine"
    done = subprocess.run(
        [*nobody, *argv, "/bin/sh", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    uid, *top, count = done.stdout.split()
    assert uid == "65534"
    assert "root" not in top and "home" not in top and "work" not in top
    assert int(count) <= 4
    assert "Read-only file system" in done.stderr
    assert (work / "mine").read_text() == "hi\n"


def test_without_isolation_the_grader_says_what_a_submission_can_read(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    (subs / "nobuild").mkdir(parents=True)
    (subs / "grading.toml").write_text('[assignment]\nbuild = "exit 1"\nrun = "./s {port}"\n')
    out = tmp_path / "out"
    result = kit("grade", str(subs), "--out", str(out), "--sandbox", "limits", timeout=120)
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert warning.startswith("WARNING: no isolation (--sandbox limits): a submission can read")
    assert "the class directory" in warning and "the grading config" in warning


# -- a class with mallory -------------------------------------------------------------------------
MALLORY = r"""
/* mallory: tries to read, write and reach what is not hers; prints what she got after STOLEN. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void steal(const char *what, const char *path)
{
    char buf[600];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "denied: %s %s\n", what, path);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    for (ssize_t i = 0; i < n; i++)
        if (!isprint((unsigned char)buf[i]))
            buf[i] = ' ';
    buf[n] = 0;
    fprintf(stderr, "STOLEN %s %s: %s\n", what, path, buf);
}

static void list(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (d == NULL) {
        fprintf(stderr, "denied: listing %s\n", path);
        return;
    }
    fprintf(stderr, "STOLEN listing %s:", path);
    while ((e = readdir(d)) != NULL)
        fprintf(stderr, " %s", e->d_name);
    fprintf(stderr, "\n");
    closedir(d);
}

static void scribble(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        fprintf(stderr, "WROTE %s\n", path);
        close(fd);
    }
}

static void reach(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        fprintf(stderr, "STOLEN connection to %s:%d\n", ip, port);
        write(fd, "STOLEN", 6);
    } else {
        fprintf(stderr, "denied: connecting to %s:%d\n", ip, port);
    }
    close(fd);
}

static void snoop_processes(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char path[300];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]) || atoi(e->d_name) == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        steal("cmdline", path);
        snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
        steal("environ", path);
    }
    closedir(d);
}

static void attempts(void)
{
    glob_t g;
    snoop_processes();
    steal("own environ", "/proc/self/environ");
    steal("alice's source", "@CLASS@/alice/server.c");
    steal("the config", "@CLASS@/grading.toml");
    list("@CLASS@");
    list("@OUT@");
    steal("alice's report", "@OUT@/alice/report.json");
    steal("alice's work copy", "../../alice/work/server.c");
    if (glob("/tmp/conformance-grade-*/*/work/server.c", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (strstr(g.gl_pathv[i], "/mallory/") == NULL)
                steal("a work copy", g.gl_pathv[i]);
        globfree(&g);
    }
    scribble("@CLASS@/alice/mallory-was-here");
    scribble("@OUT@/mallory-was-here");
    scribble("../../alice/work/mallory-was-here");
    scribble("/tmp/mallory-was-here-@TAG@");
    scribble("/usr/mallory-was-here-@TAG@");
    scribble("/etc/mallory-was-here-@TAG@");
    reach("127.0.0.1", @PORT@);
    reach("192.0.2.1", 80);
}

int main(int argc, char **argv)
{
    (void)argv;
    attempts();
    /* A daemon, to be found and killed. */
    if (fork() == 0) {
        setsid();
        if (fork() == 0)
            for (;;)
                pause();
        _exit(0);
    }
    return argc == 2 ? 1 : 0; /* the server gives up: its stderr's tail goes to the student */
}
"""


def _mallory(subs: Path, out: Path, tag: str, port: int) -> None:
    source = (
        MALLORY.replace("@CLASS@", str(subs))
        .replace("@OUT@", str(out))
        .replace("@TAG@", tag)
        .replace("@PORT@", str(port))
    )
    (subs / "mallory").mkdir()
    (subs / "mallory" / "server.c").write_text(source)
    # Her build tries it all too, and leaves its daemon behind.
    (subs / "mallory" / "Makefile").write_text(
        "server: server.c\n\tcc -o server server.c\n\t./server\n"
    )


def _stolen(text: str) -> list[str]:
    """What mallory says she got, in a log or (JSON- or XML-escaped) in a report."""
    return re.findall(r"STOLEN (.*?)(?:\\n|&#10;|\n|$)", text)


@needs_cc
@needs_root
@pytest.mark.slow
def test_a_submission_can_read_nothing_of_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex
    subs, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(CLASS / "alice", subs / "alice")
    source = subs / "alice" / "server.c"
    source.write_text(f"/* alice-{tag} */\n" + source.read_text())
    config = (CLASS / "grading.toml").read_text()
    (subs / "grading.toml").write_text(f"# config-{tag}\n" + config)
    monkeypatch.setenv("GRADER_SECRET", f"environment-{tag}")
    with socket.create_server(("127.0.0.1", 0)) as outside:
        outside.setblocking(False)
        _mallory(subs, out, tag, outside.getsockname()[1])
        picks = ["--requirement", "PROTO-1", "--requirement", "ZOMB-1", "--requirement", "EXIT-5"]
        result = kit("grade", str(subs), "--out", str(out), "-j", "2", "--keep-work", *picks)
        kept = re.search(r"work directories kept in (\S+)", result.stderr)
        scratch = Path(kept[1]) if kept else None
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            with pytest.raises(BlockingIOError):
                outside.accept()  # nothing reached the machine's own loopback
            _nothing_stolen(subs, out, scratch, tag, result.stderr)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _nothing_stolen(subs: Path, out: Path, scratch: Path | None, tag: str, stderr: str) -> None:
    """Every attempt of mallory's failed, alice kept her grade, nothing of mallory's runs."""
    secrets = {f"alice-{tag}", f"config-{tag}", f"environment-{tag}"}
    assert scratch is not None, stderr
    assert "isolation (namespaces)" in stderr
    docs = {n: json.loads((out / n / "report.json").read_text()) for n in ("alice", "mallory")}
    # alice's grade is hers, as without mallory; mallory tried everything and got 0.
    assert (docs["alice"]["score"], docs["alice"]["max_score"]) == (3, 3)  # PROTO-1 is 2
    exit5 = [r for r in docs["alice"]["requirements"] if r["id"] == "EXIT-5"]
    assert exit5[0]["outcome"] == "passed"
    assert docs["mallory"]["score"] == 0
    logs = {p: p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()}
    mallorys = logs[out / "mallory" / "build.log"] + logs[out / "mallory" / "results.json"]
    assert "denied: alice's source" in mallorys, "her attempts ran, in the build and at start"
    assert "denied: connecting to 192.0.2.1:80" in mallorys
    for path, text in logs.items():
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path} holds {leaked}"
        for line in _stolen(text):
            # She may read her own processes and the sandbox's init, nothing else.
            for clue in (str(subs), str(out), "alice", "conformance grade", "conformance run"):
                assert clue not in line, f"{path}: STOLEN {line}"
            assert "connection" not in line and "listing" not in line, line
    for written in (
        subs / "alice" / "mallory-was-here",
        out / "mallory-was-here",
        scratch / "alice" / "work" / "mallory-was-here",
        Path(f"/tmp/mallory-was-here-{tag}"),
        Path(f"/usr/mallory-was-here-{tag}"),
        Path(f"/etc/mallory-was-here-{tag}"),
    ):
        assert not written.exists(), written
    # Nothing of hers is left running: not her daemons, not the sandbox around them.
    uid = json.loads((out / "mallory" / "grade.json").read_text())["uid"]
    deadline = time.monotonic() + LEFTOVER_WAIT
    while time.monotonic() < deadline and _processes_of(uid):
        time.sleep(0.1)
    assert not _processes_of(uid)


def _processes_of(uid: int) -> list[int]:
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids, status = proc.info["uids"], proc.info["status"]
        if uids and uids.real == uid and status != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found
