"""``prominence-emulator``: run the emulator until SIGINT/SIGTERM.

stdout carries exactly one line, ``PROMINENCE emulator listening on <base-url>``, so scripts can
read the URL; everything else (notes, job log) goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from .config import DEFAULT_BARE_IMAGES
from .extra import EmulatorExtraMissing, emulator_class
from .oidc import parse_clients

log = logging.getLogger("prominence-emulator")

READY_LINE = "PROMINENCE emulator listening on {url}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (names are a contract: tests and docs use them)."""
    parser = argparse.ArgumentParser(
        prog="prominence-emulator",
        description=(
            "A local PROMINENCE-compatible REST service for developing and testing clients. "
            "Tasks run on this host (images are checked as the worker pulls them, not pulled)."
        ),
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8642, help="port; 0 picks a free one (default: %(default)s)")
    add("--prefix", default="/api/v1", help="path prefix of the API (default: %(default)s)")
    add(
        "--token",
        action="append",
        dest="tokens",
        metavar="T",
        help="accept only this bearer token (repeatable), besides the tokens its identity "
        "provider issues; default: any JWT with an unexpired exp claim (the real server "
        "refuses every other token)",
    )
    add(
        "--write-token-file",
        metavar="PATH",
        help="at start, write a token file for --token-user to PATH (mode 0600), the JSON that "
        "`prominence login` saves, for --prominence-token-file or ~/.prominence/token",
    )
    add(
        "--token-user",
        default="emulator-user",
        metavar="NAME",
        help="the user of --write-token-file's token (default: %(default)s)",
    )
    add("--cpus", type=int, help="CPU slots shared by running jobs (default: all cores)")
    add("--memory", type=int, metavar="GB", help="memory slots in GB (default: host RAM)")
    add(
        "--state-dir",
        metavar="DIR",
        help="where job sandboxes live (default: a temporary dir removed at exit)",
    )
    add(
        "--instant",
        action="store_true",
        help="do not run jobs: each completes with exit code 0 after --job-seconds",
    )
    add(
        "--job-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="duration of an --instant job (default: %(default)s)",
    )
    add(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds added to every API request (default: %(default)s)",
    )
    add(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of API requests answered by a transient fault: HTML 502/503 or a "
        "dropped connection; POST /jobs may also create the job and lose the answer",
    )
    add("--seed", type=int, metavar="N", help="seed of the fault choice (reproducible runs)")
    add(
        "--kill-grace",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between the SIGTERM and the SIGKILL a deleted job's processes get "
        "(default: %(default)s)",
    )
    add(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply job durations given in minutes (walltime, maximumTimeInQueue) by F; "
        "0.01 makes a 1-minute walltime 0.6 s (default: %(default)s)",
    )
    add(
        "--bare-image",
        action="append",
        dest="bare_images",
        metavar="PATTERN",
        help="tasks of images matching this fnmatch pattern get a python without Snakemake "
        f"(repeatable; default: {' '.join(DEFAULT_BARE_IMAGES)})",
    )
    add(
        "--plain-image",
        action="append",
        dest="plain_images",
        default=[],
        metavar="PATTERN",
        help="tasks of images matching this pattern get a python with Snakemake and what it "
        "requires only (no storage plugins), like the official snakemake/snakemake image "
        "(repeatable)",
    )
    add(
        "--missing-image",
        action="append",
        dest="missing_images",
        default=[],
        metavar="PATTERN",
        help="jobs using an image matching this pattern (as the task gives it) fail with "
        "'Container image pull failed' (repeatable)",
    )
    add(
        "--pass-env",
        action="append",
        dest="pass_env",
        default=[],
        metavar="NAME",
        help="pass this variable of the emulator's environment to every task (repeatable)",
    )
    add(
        "--pending-state",
        action="store_true",
        help="report queued jobs as 'pending' instead of 'idle' (as the EOSC service does)",
    )
    add(
        "--token-lifetime",
        type=float,
        default=3600.0,
        metavar="S",
        help="lifetime in seconds of the access tokens its identity provider issues at "
        "<root>/_emulator/oidc/token (default: %(default)s)",
    )
    add(
        "--oidc-client",
        action="append",
        dest="oidc_clients",
        default=[],
        metavar="ID:SECRET",
        help="a client the token endpoint accepts (repeatable); default: any client",
    )
    add(
        "--hold-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="keep each new job queued for S seconds (inf: until the emulator stops), shown "
        "as 'waiting' with the reason 'No matching resources currently available', as when "
        "no site has room (default: no hold)",
    )
    add(
        "--hold-idle-match",
        action="append",
        dest="hold_idle_match",
        metavar="PATTERN",
        help="hold only jobs whose name matches this fnmatch pattern, e.g. "
        "'snakejob.align.*' (repeatable; default: every job)",
    )
    add(
        "--image-pull-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="each task's first pull of its image takes S seconds of the job's run, "
        "reported as imagePullTime (-1 for a cached image) (default: %(default)s)",
    )
    add(
        "--stage-in-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="each run spends S seconds staging in before its tasks start, reported as "
        "stageInTime (default: %(default)s)",
    )
    add(
        "--stage-out-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="each run spends S seconds staging out after its tasks, reported as "
        "stageOutTime (default: %(default)s)",
    )
    add(
        "--omit-memory",
        action="store_true",
        help="report no memory figures (maxResidentSetSizeKB, maxMemoryUsageKB), like "
        "sites that do not measure them",
    )
    add(
        "--remove-held-after",
        type=float,
        default=80.0,
        metavar="S",
        help="a job that used more than its memory (1000 MB per GB asked) is held: listed "
        "'failed' without a reason, still queued; S seconds later it is removed as 'killed' "
        "with 'Job used too much memory' (the server: 80 s, checked about once a minute; "
        "inf: never) (default: %(default)s)",
    )
    add(
        "--submit-fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of valid job submissions answered 400 by a transient backend failure "
        "('Unable to create job sandbox', 'Unable to write input file to disk', 'Job "
        "submission failed with an exception: ...'); half of the last kind create the job "
        "anyway (reproducible with --seed) (default: %(default)s)",
    )
    add("--log-requests", action="store_true", help="log every HTTP request on stderr")
    add("-v", "--verbose", action="store_true", help="log every job and injected fault on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground; returns the exit status (0 after SIGINT/SIGTERM)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        clients = parse_clients(args.oidc_clients)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        emulator_type = emulator_class()
    except EmulatorExtraMissing as exc:  # a plain install of the plugin: say which extra
        log.error("%s", exc)
        return 2
    try:
        emulator = emulator_type(
            host=args.host,
            port=args.port,
            prefix=args.prefix,
            tokens=args.tokens,
            cpus=args.cpus,
            memory=args.memory,
            state_dir=args.state_dir,
            instant=args.instant,
            job_seconds=args.job_seconds,
            latency=args.latency,
            fault_rate=args.fault_rate,
            seed=args.seed,
            time_scale=args.time_scale,
            bare_images=args.bare_images or DEFAULT_BARE_IMAGES,
            missing_images=args.missing_images,
            plain_images=args.plain_images,
            pass_env=args.pass_env,
            pending_state=args.pending_state,
            log_requests=args.log_requests,
            token_lifetime=args.token_lifetime,
            oidc_clients=clients,
            hold_idle=args.hold_idle,
            hold_idle_match=args.hold_idle_match or ("*",),
            image_pull_seconds=args.image_pull_seconds,
            stage_in_seconds=args.stage_in_seconds,
            stage_out_seconds=args.stage_out_seconds,
            omit_memory=args.omit_memory,
            kill_grace=args.kill_grace,
            remove_held_after=args.remove_held_after,
            submit_fault_rate=args.submit_fault_rate,
        )
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping jobs", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        emulator.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        return 2
    if args.write_token_file:
        try:
            path = emulator.write_token_file(args.write_token_file, args.token_user)
        except OSError as exc:
            emulator.stop()
            log.error("cannot write the token file %s: %s", args.write_token_file, exc)
            return 2
        log.info(
            "token file for user %s written to %s (valid %g s)",
            args.token_user,
            path,
            emulator.config.token_lifetime,
        )
    config = emulator.config
    log.info(
        "container images are checked as the worker pulls them but not pulled: tasks run on "
        "this host, in a scratch "
        "directory under %s",
        emulator.state_dir,
    )
    log.info(
        "slots: %d cpus, %d GB memory; time scale %g%s%s",
        config.total_cpus,
        config.total_memory,
        config.time_scale,
        "; instant mode" if config.instant else "",
        f"; fault rate {config.fault_rate}" if config.fault_rate else "",
    )
    if config.submit_fault_rate:
        log.info("submission fault rate %g", config.submit_fault_rate)
    log.info(
        "identity provider: %s (token endpoint %s/token), access tokens live %g s",
        emulator.oidc_url,
        emulator.oidc_url,
        config.token_lifetime,
    )
    print(READY_LINE.format(url=emulator.url), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
