"""One supervisor for every process of the local stack (Kafka, the SMTP sink, Prometheus, the services, the
simulator): a pid file is believed only while that process lives and its command line is the one started, so a pid
the system has given to another program is neither reported running nor signalled."""

import subprocess
import sys

from deploy.local import processes
from deploy.local.settings import LocalStack


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
