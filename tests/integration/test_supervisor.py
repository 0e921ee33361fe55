"""One supervisor for every process of the local stack (Kafka, the SMTP sink, Prometheus, the services, the
simulator): a pid file is believed only while that process lives and its command line is the one started, so a pid
the system has given to another program is neither reported running nor signalled."""

import os
import subprocess
import sys
import time
from pathlib import Path

from deploy.local import processes
from deploy.local.settings import LocalStack
from deploy.local.supervisor import Supervised, group_niceness


def test_a_service_whose_pid_went_to_another_program_is_not_running_and_stopping_it_leaves_that_program_alone(
    tmp_path,
) -> None:
    # given capture's pid file naming a live process that is not capture (capture died, its pid was reused)
    local = LocalStack.from_env({"OMS_STATE_DIR": str(tmp_path)})
    capture = processes.service(local, "capture")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        capture.pid_file.parent.mkdir(parents=True)
        capture.pid_file.write_text(str(other.pid))

        # then capture is not running
        assert capture.pid() is None
        # and stopping capture does not touch the other program
        capture.stop(timeout=1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_program_started_behind_the_order_path_runs_at_that_priority_every_thread_of_it_and_its_session(
    tmp_path,
) -> None:
    # given a program the supervisor starts at a lower CPU priority, which reports its threads' priorities
    program = Supervised("follower", tmp_path / "follower.pid", tmp_path / "follower.log", marker="follower-marker")
    reports = (
        "import os, threading, time\n"
        "seen = [os.getpriority(os.PRIO_PROCESS, 0)]\n"
        "thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))\n"
        "thread.start(); thread.join()\n"
        "print('priorities', *seen, flush=True)\n"
        "time.sleep(60)\n"
    )
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)  # the system's lowest priority is 19
    pid = program.spawn([sys.executable, "-c", reports, "follower-marker"], tmp_path, niceness=7)
    try:
        # then it is known as started, and it and the threads it starts run 7 behind this process
        assert program.pid() == pid
        deadline = time.monotonic() + 10
        while "priorities" not in program.log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert program.log_file.read_text().split() == ["priorities", str(expected), str(expected)]
        # and where the kernel shares the cores between sessions (each program here is one), its session's group
        # runs 7 behind too: without it the niceness would order it only against itself
        if Path("/proc/self/autogroup").exists():
            assert group_niceness(pid) == 7
            assert group_niceness(os.getpid()) != 7
    finally:
        program.kill()
    assert program.pid() is None
