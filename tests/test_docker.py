"""The container image, tested without a Docker engine.

No engine runs here, so the image is checked in the parts that carry its behaviour:

* the Dockerfile is linted (hadolint) and parsed: stages, user, healthcheck, exec-form entry
  command, no fetched or baked-in secrets; `.dockerignore` keeps the context to what is copied;
* the builder stage is replayed: its COPY lines fill a context folder (through the
  `.dockerignore` rules) and its RUN lines build the venv, so the venv is the image's, with the
  image's locked dependencies only;
* the image's ENTRYPOINT + CMD run from that venv with the container paths replaced by a fixture
  copy, its payload store and a tokens file, on 127.0.0.1: probes, auth, the HEALTHCHECK
  command, a clean SIGTERM;
* the documented read-only mount is reproduced with a read-only bind mount in a private mount
  namespace (skipped where the kernel refuses one).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from landscape_graphql.auth import new_token
from landscape_graphql.cli import build_parser
from tests.conftest import FIXTURES, payload_dir, truth
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
VENV_BIN = Path(sys.executable).parent
HADOLINT = VENV_BIN / "hadolint"

# Where the image expects its inputs (README "Docker"); the run tests substitute each one.
CONTAINER_DB = "/data/landscape.db"
CONTAINER_PAYLOADS = "/payloads"
CONTAINER_TOKENS = "/run/secrets/landscape-tokens.json"
CONTAINER_PORT = "8000"
RUN = truth(29, "fork-coalesce")["runs"][0]
CASE = RUN["cases"]["forked_parent"]


# ------------------------------------------------------------------ Dockerfile parsing


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the instruction, continuation lines joined
    stage: int  # index of the FROM it belongs to; -1 for ARGs before the first FROM
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    stage, pending, start = -1, "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        # Docker drops comment and empty lines, also in the middle of a continued instruction.
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), args.strip(), stage, start))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction; fails the test for shell form."""
    assert args.startswith("["), f"not exec (JSON array) form: {args}"
    value = json.loads(args)
    assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), args
    return value


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.text = path.read_text(encoding="utf-8")
        self.instructions = parse_dockerfile(self.text)
        self.global_args = dict(
            _arg(i.args) for i in self.instructions if i.keyword == "ARG" and i.stage == -1)
        self.stages: list[tuple[str, str | None]] = []  # (image, name)
        for i in self.of("FROM"):
            parts = i.args.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                           lambda m: self.global_args.get(m.group(1) or m.group(2), ""), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            self.stages.append((image, name))

    def of(self, keyword: str, stage: int | None = None) -> list[Instruction]:
        return [i for i in self.instructions
                if i.keyword == keyword and (stage is None or i.stage == stage)]

    @property
    def runtime(self) -> int:
        return len(self.stages) - 1

    def stage_index(self, name: str) -> int:
        return [n for _, n in self.stages].index(name)

    def entry_argv(self) -> list[str]:
        (entrypoint,) = self.of("ENTRYPOINT", self.runtime)
        (cmd,) = self.of("CMD", self.runtime)
        return exec_form(entrypoint.args) + exec_form(cmd.args)

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        (check,) = self.of("HEALTHCHECK", self.runtime)
        options, keyword, command = check.args.partition(" CMD ")
        assert keyword, f"HEALTHCHECK without CMD: {check.args}"
        flags = dict(o.removeprefix("--").split("=", 1) for o in options.split())
        return flags, exec_form(command.strip())

    def env(self, stage: int) -> dict[str, str]:
        env: dict[str, str] = {}
        for i in self.of("ENV", stage):
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', i.args):
                env[key] = value.strip('"')
        return env


def _arg(args: str) -> tuple[str, str]:
    name, _, default = args.partition("=")
    return name.strip(), default.strip()


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE)


# ------------------------------------------------------------------ .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern as Docker's matcher reads it (Go filepath.Match plus `**`)."""
    pattern = os.path.normpath(pattern.strip("/"))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


class DockerIgnore:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                include = line.startswith("!")
                self.rules.append((include, _pattern_regex(line.removeprefix("!"))))

    def excluded(self, path: str) -> bool:
        # A pattern matching a parent folder matches the path too; the last matching rule wins.
        parts = path.split("/")
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        verdict = False
        for include, regex in self.rules:
            if any(regex.match(c) for c in candidates):
                verdict = not include
        return verdict


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ lint and structure


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(HADOLINT), "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr
    # An inline ignore must say why, on the comment line itself.
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore=" in line:
            assert re.search(r"ignore=[\w,]+\s+\S", line), f"hadolint ignore without a reason: {line}"


def test_hadolint_does_lint(tmp_path: Path) -> None:
    # Guards the test above: an invocation that checked nothing would also report [].
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nADD https://example.invalid/x.tgz /x\nRUN pip install requests\n")
    result = subprocess.run([str(HADOLINT), "--format", "json", str(bad)],
                            capture_output=True, text=True, timeout=60, check=False)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3006", "DL3013", "DL3042"} <= codes, codes


def test_multi_stage_slim_runtime_as_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    image, _ = dockerfile.stages[dockerfile.runtime]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image
    users = dockerfile.of("USER", dockerfile.runtime)
    assert users, "the runtime stage sets no USER: it would run as root"
    user, _, group = users[-1].args.partition(":")
    # Numeric, so that a runtime's runAsNonRoot can verify it without reading /etc/passwd.
    assert user.isdigit() and int(user) >= 1000, users[-1].args
    assert not group or (group.isdigit() and int(group) != 0), users[-1].args
    assert users[-1].line > max(i.line for i in dockerfile.of("RUN", dockerfile.runtime))
    # The runtime stage takes only the builder's venv: no sources, no build tools.
    copies = dockerfile.of("COPY", dockerfile.runtime)
    assert copies and all(c.args.startswith("--from=builder ") for c in copies), copies
    assert [c.args.split()[1:] for c in copies] == [["/opt/landscape-graphql", "/opt/landscape-graphql"]]
    for run in dockerfile.of("RUN", dockerfile.runtime):
        assert "pip install" not in run.args and "apt-get" not in run.args, run.args


def test_healthcheck_probes_livez_in_exec_form(dockerfile: Dockerfile) -> None:
    flags, command = dockerfile.healthcheck()
    assert command[:2] == ["python", "-c"], command
    assert f"http://127.0.0.1:{CONTAINER_PORT}/livez" in command[2]
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags), flags


def test_entry_command_is_exec_form_and_what_the_cli_accepts(dockerfile: Dockerfile) -> None:
    argv = dockerfile.entry_argv()
    assert argv[:2] == ["landscape-graphql", "serve"], argv
    args = build_parser().parse_args(argv[1:])
    assert (args.host, str(args.port), args.db) == ("0.0.0.0", CONTAINER_PORT, CONTAINER_DB)
    assert args.payloads == [CONTAINER_PAYLOADS]
    assert str(args.auth_tokens) == CONTAINER_TOKENS
    assert not args.insecure_no_auth
    assert [e.args for e in dockerfile.of("EXPOSE", dockerfile.runtime)] == [CONTAINER_PORT]
    # --host is in ENTRYPOINT, the rest in CMD: `docker run IMAGE --db ... --oidc-...` replaces
    # the tokens file without having to repeat the listening address.
    (entrypoint,) = dockerfile.of("ENTRYPOINT", dockerfile.runtime)
    assert "--host" in exec_form(entrypoint.args)
    (cmd,) = dockerfile.of("CMD", dockerfile.runtime)
    assert "--auth-tokens" in exec_form(cmd.args)


def test_nothing_fetched_or_secret_in_the_image(dockerfile: Dockerfile) -> None:
    assert not dockerfile.of("ADD"), "ADD (URLs, auto-extraction): use COPY"
    secretish = re.compile(r"SECRET|TOKEN|PASSW|_KEY\b|APIKEY|CREDENTIAL", re.IGNORECASE)
    for i in dockerfile.of("ENV") + dockerfile.of("ARG"):
        names = [n for n, _ in re.findall(r'(\w+)=("[^"]*"|\S+)', i.args)] or [_arg(i.args)[0]]
        assert not [n for n in names if secretish.search(n)], f"line {i.line}: {i.args}"
    for i in dockerfile.of("RUN") + dockerfile.of("COPY"):
        # Secrets are mounted at run time, never written into a layer.
        assert "/run/secrets" not in i.args and "ELSPETH_AUDIT_KEY" not in i.args, i.args
        assert not re.search(r"https?://", i.args), f"line {i.line} fetches: {i.args}"
    for i in dockerfile.of("COPY"):
        sources = [s for s in i.args.split()[:-1] if not s.startswith("--")]
        assert not [s for s in sources if re.search(r"\.(json|env|pem|key|db)$|tokens", s)], i.args


def test_dockerignore_sends_only_what_the_build_copies(dockerfile: Dockerfile,
                                                       dockerignore: DockerIgnore) -> None:
    for path in (".git/HEAD", ".venv/bin/python", "tests/fixtures/epoch29/fork-coalesce.db",
                 "web/node_modules/x/index.js", "bench/data/big.db", "tokens.json", ".env",
                 "demo-data/demo.db", "landscape_graphql/__pycache__/app.cpython-311.pyc",
                 "landscape_graphql.egg-info/PKG-INFO", "docker/lock.sh", "requirements.lock"):
        assert dockerignore.excluded(path), path
    for copy in dockerfile.of("COPY", dockerfile.stage_index("builder")):
        for source in copy.args.split()[:-1]:
            assert not dockerignore.excluded(source.rstrip("/")), f"COPY {source} is not in the context"
    assert not dockerignore.excluded("landscape_graphql/static/graphiql/index.html")


# ------------------------------------------------------------------ locks


def _lock_entries(path: Path) -> dict[tuple[str, str], frozenset[str]]:
    """(normalised name, version) -> hashes, from a pip-compile/uv lock file."""
    entries: dict[tuple[str, str], frozenset[str]] = {}
    for block in re.split(r"\n(?=\S)", path.read_text(encoding="utf-8")):
        head = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)
        if head:
            name = re.sub(r"[-_.]+", "-", head.group(1)).lower()
            entries[(name, head.group(2))] = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", block))
    return entries


def test_image_locks_are_subsets_of_the_main_lock() -> None:
    main = _lock_entries(ROOT / "requirements.lock")
    runtime = _lock_entries(ROOT / "docker" / "requirements.lock")
    build = _lock_entries(ROOT / "docker" / "requirements-build.lock")
    for key, hashes in {**runtime, **build}.items():
        assert key in main, f"{key} is not pinned so in requirements.lock: run docker/lock.sh"
        assert hashes and hashes == main[key], f"{key}: hashes differ from requirements.lock"
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {name for name, _ in runtime}
    extras = project["project"]["optional-dependencies"]
    # the image is landscape-graphql[all,otel]
    for requirement in [*project["project"]["dependencies"], *extras["postgres"], *extras["oidc"],
                        *extras["sqlcipher"], *extras["otel"]]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", requirement)[0]).lower()
        assert name in names, f"{name} missing from docker/requirements.lock: run docker/lock.sh"
    # The runtime lock carries no development tool.
    assert not names & {"mypy", "ruff", "pytest", "playwright", "hypothesis", "setuptools"}
    assert {name for name, _ in build} == {"setuptools"}


# ------------------------------------------------------------------ the image's venv


def _copy_into(source: str, dest: Path, ignore: DockerIgnore) -> None:
    origin = ROOT / source
    if origin.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, dest / origin.name)
        return
    for path in sorted(origin.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not ignore.excluded(relative):
            target = dest / path.relative_to(origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


@pytest.fixture(scope="module")
def image_venv(dockerfile: Dockerfile, dockerignore: DockerIgnore,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage replayed: its COPY lines into a folder standing for its WORKDIR, then
    its RUN lines with the venv path moved into the temporary folder."""
    base = tmp_path_factory.mktemp("image")
    builder = dockerfile.stage_index("builder")
    (workdir,) = [i.args for i in dockerfile.of("WORKDIR", builder)]
    ((venv_path, _),) = [c.args.split()[1:] for c in dockerfile.of("COPY", dockerfile.runtime)]
    src, venv = base / "src", base / "venv"
    src.mkdir()
    for copy in dockerfile.of("COPY", builder):
        *sources, dest = copy.args.split()
        assert not dest.startswith("/"), "builder COPY destinations are relative to WORKDIR"
        for source in sources:
            target = src / dest if dest.endswith("/") or len(sources) > 1 else (src / dest).parent
            _copy_into(source, target, dockerignore)
    env = {**os.environ, **dockerfile.env(builder), "PYTHON": sys.executable}
    env.pop("PIP_NO_CACHE_DIR")  # the only difference: this machine's pip cache may serve the wheels
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    for run in dockerfile.of("RUN", builder):
        moved = {venv_path: str(venv), workdir: str(src)}
        command = shlex.join(moved.get(word, word) for word in shlex.split(run.args))
        result = subprocess.run(["sh", "-c", command], cwd=src, env=env, capture_output=True,
                                text=True, timeout=300, check=False)
        assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (venv / "bin" / "landscape-graphql").exists()
    return venv


def test_image_venv_holds_the_package_and_no_build_tools(image_venv: Path) -> None:
    installed = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c",
         "import importlib.metadata as m, landscape_graphql as p; "
         "print(p.__file__); print(sorted(d.metadata['Name'].lower() for d in m.distributions()))"],
        capture_output=True, text=True, cwd=image_venv, timeout=60, check=True).stdout.splitlines()
    assert installed[0].startswith(str(image_venv)), "the venv imports the work tree, not its own copy"
    names = set(json.loads(installed[1].replace("'", '"')))
    assert "landscape-graphql" in names and "uvicorn" in names
    assert not names & {"pip", "setuptools", "mypy", "pytest", "playwright"}, names
    assert list((image_venv / "lib").glob("python3.11/site-packages/landscape_graphql/static/*"))


# ------------------------------------------------------------------ running the entry command


@dataclass
class Inputs:
    db: Path
    payloads: Path
    tokens: Path
    token: str


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "landscape.db"
    shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", db)
    token, digest = new_token()
    tokens = tmp_path / "landscape-tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "docker-test", "sha256": digest}]}))
    return Inputs(db, payload_dir(29, "fork-coalesce"), tokens, token)


def substitute(argv: Sequence[str], replacements: Mapping[str, str]) -> list[str]:
    """argv with whole-argument replacements; each must be used, so a Dockerfile whose paths
    moved fails here instead of silently serving the container paths."""
    unused = set(replacements) - set(argv)
    assert not unused, f"the entry command no longer contains {sorted(unused)}"
    return [replacements.get(a, a) for a in argv]


def local_argv(dockerfile: Dockerfile, inputs: Inputs, port: int, db: Path | None = None) -> list[str]:
    return substitute(dockerfile.entry_argv(), {
        CONTAINER_DB: str(db or inputs.db), CONTAINER_PAYLOADS: str(inputs.payloads),
        CONTAINER_TOKENS: str(inputs.tokens),
        # Servers here listen on loopback only; the container's 0.0.0.0 is its own namespace.
        "0.0.0.0": "127.0.0.1", CONTAINER_PORT: str(port)})


def image_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def launched(argv: Sequence[str], env: Mapping[str, str], cwd: Path, port: int,
             timeout_s: float = 30.0) -> Iterator[Server]:
    log = cwd / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(process, log, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, f"exited {process.returncode} during start-up:\n{server.output()}"
            assert time.monotonic() < deadline, f"no /livez within {timeout_s} s:\n{server.output()}"
            try:
                if httpx.get(f"{server.url}/livez", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def graphql(server: Server, token: str | None, query: str) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{server.url}/graphql", json={"query": query}, headers=headers,
                      timeout=30, trust_env=False)


def run_healthcheck(dockerfile: Dockerfile, env: Mapping[str, str], port: int) -> int:
    _, command = dockerfile.healthcheck()
    probe = f"127.0.0.1:{CONTAINER_PORT}/"
    assert probe in command[-1]
    command = [*command[:-1], command[-1].replace(probe, f"127.0.0.1:{port}/")]
    return subprocess.run(command, env=dict(env), capture_output=True, timeout=30, check=False).returncode


# How a graceful stop may end today: 0, or death by the SIGTERM that uvicorn re-raises after
# its shutdown (shown as 143 by Docker). test_sigterm_exits_0 holds the target: 0.
STOPPED = (0, -signal.SIGTERM)


def stop(server: Server, within_s: float = 10.0) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(within_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {within_s} s after SIGTERM:\n{server.output()}")
    # Graceful: the app's lifespan shutdown ran (the database was disposed), nothing crashed.
    assert "Application shutdown complete" in server.output(), server.output()
    assert "Traceback" not in server.output(), server.output()
    return code


def test_entry_command_serves_checks_health_and_stops_cleanly(
        dockerfile: Dockerfile, image_venv: Path, inputs: Inputs, tmp_path: Path) -> None:
    port = free_port()
    env = image_env(image_venv)
    with launched(local_argv(dockerfile, inputs, port), env, tmp_path, port) as server:
        ready = httpx.get(f"{server.url}/readyz", timeout=10, trust_env=False)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        assert ready.json()["epoch"] == 29

        query = (f'{{ run(runId: "{RUN["run_id"]}") {{ runId status }} '
                 f'row(rowId: "{CASE["row_id"]}") {{ sourceData {{ state }} }} }}')
        answer = graphql(server, inputs.token, query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body
        assert body["data"]["run"]["runId"] == RUN["run_id"]
        # AVAILABLE (not STORE_NOT_CONFIGURED): the --payloads mount reached the app.
        assert body["data"]["row"]["sourceData"]["state"] == "AVAILABLE"

        for token in (None, "not-a-token-in-the-file"):
            refused = graphql(server, token, query)
            assert refused.status_code == 401, refused.text
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "data" not in refused.json()

        assert run_healthcheck(dockerfile, env, port) == 0

        assert stop(server) in STOPPED, server.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/readyz", timeout=2, trust_env=False)
    # The same probe reports the stopped server: Docker would mark the container unhealthy.
    assert run_healthcheck(dockerfile, env, port) != 0


def test_sigterm_exits_0(dockerfile: Dockerfile, image_venv: Path, inputs: Inputs, tmp_path: Path) -> None:
    port = free_port()
    with launched(local_argv(dockerfile, inputs, port), image_env(image_venv), tmp_path, port) as server:
        assert stop(server) == 0


def test_cli_refuses_to_listen_publicly_without_auth(dockerfile: Dockerfile, image_venv: Path,
                                                      tmp_path: Path) -> None:
    # The image's command with the tokens file left out, as a `docker run IMAGE --db ...` would.
    # The database path does not exist: the refusal comes before any database access, and a
    # regression then fails on the database instead of listening on every interface here.
    argv = dockerfile.entry_argv()
    at = argv.index("--auth-tokens")
    del argv[at:at + 2]
    argv = substitute(argv, {CONTAINER_DB: str(tmp_path / "absent.db"),
                             CONTAINER_PAYLOADS: str(payload_dir(29, "fork-coalesce")),
                             CONTAINER_PORT: str(free_port())})
    assert "0.0.0.0" in argv
    result = subprocess.run(argv, env=image_env(image_venv), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "Refusing to listen on 0.0.0.0 without authentication" in result.stderr, result.stderr
    assert "--auth-tokens" in result.stderr and "Traceback" not in result.stderr


def test_missing_tokens_file_is_refused(dockerfile: Dockerfile, image_venv: Path, inputs: Inputs,
                                        tmp_path: Path) -> None:
    # The likeliest first-run mistake with the image: the secret is not mounted.
    inputs.tokens = tmp_path / "not-mounted.json"
    argv = local_argv(dockerfile, inputs, free_port())
    result = subprocess.run(argv, env=image_env(image_venv), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0 and "not-mounted.json" in result.stderr, result.stderr


def test_missing_tokens_file_is_refused_with_a_message(dockerfile: Dockerfile, image_venv: Path,
                                                       inputs: Inputs, tmp_path: Path) -> None:
    inputs.tokens = tmp_path / "not-mounted.json"
    argv = local_argv(dockerfile, inputs, free_port())
    result = subprocess.run(argv, env=image_env(image_venv), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


# ------------------------------------------------------------------ the read-only mount


def _can_bind_mount_read_only(tmp_path: Path) -> bool:
    source, target = tmp_path / "probe-src", tmp_path / "probe-dst"
    source.mkdir()
    target.mkdir()
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount --bind -o ro "{source}" "{target}" && ! touch "{target}/x" 2>/dev/null'],
        capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def read_only_mounted(argv: Sequence[str], host_dir: Path, mount_point: Path) -> list[str]:
    """argv run in a private mount namespace where mount_point is host_dir, read-only: what
    `-v host_dir:mount_point:ro` gives the container. The server keeps the process id."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind -o ro "$1" "$2" && shift 2 && exec "$@"',
            "sh", str(host_dir), str(mount_point), *argv]


@pytest.fixture
def ro_mount(tmp_path: Path) -> Path:
    if shutil.which("unshare") is None or not _can_bind_mount_read_only(tmp_path):
        pytest.skip("no private mount namespace here (needs unshare and CAP_SYS_ADMIN)")
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    return mount_point


def test_live_database_folder_mounted_read_only(dockerfile: Dockerfile, image_venv: Path,
                                                inputs: Inputs, ro_mount: Path, tmp_path: Path) -> None:
    # ELSPETH still has the database open: its -wal and -shm files exist beside it, and the
    # folder mount shares them with the reader (a file mount would hide them).
    writer = sqlite3.connect(inputs.db)
    try:
        writer.execute("SELECT count(*) FROM runs").fetchone()
        assert (inputs.db.parent / "landscape.db-shm").exists()
        port = free_port()
        argv = local_argv(dockerfile, inputs, port, db=ro_mount / inputs.db.name)
        env = image_env(image_venv)
        with launched(read_only_mounted(argv, inputs.db.parent, ro_mount), env, tmp_path, port) as server:
            ready = httpx.get(f"{server.url}/readyz", timeout=10, trust_env=False)
            assert ready.status_code == 200, ready.text
            answer = graphql(server, inputs.token, f'{{ token(tokenId: "{CASE["token_id"]}") '
                                                   "{ children { tokenId } } }")
            children = {c["tokenId"] for c in answer.json()["data"]["token"]["children"]}
            assert children == set(CASE["children"]), answer.text
            assert stop(server) in STOPPED, server.output()
    finally:
        writer.close()


def test_closed_wal_database_mounted_read_only_is_refused_cleanly(
        dockerfile: Dockerfile, image_venv: Path, inputs: Inputs, ro_mount: Path, tmp_path: Path) -> None:
    # A finished run: ELSPETH closed the database, SQLite removed -wal/-shm, and a read-only
    # mount leaves nowhere to create the -shm a WAL reader needs. The server must say so and
    # stop (README "Docker" gives the ways round), not crash or serve half a database.
    assert not (inputs.db.parent / "landscape.db-wal").exists()
    argv = local_argv(dockerfile, inputs, free_port(), db=ro_mount / inputs.db.name)
    result = subprocess.run(read_only_mounted(argv, inputs.db.parent, ro_mount), env=image_env(image_venv),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot serve" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_same_database_out_of_wal_mode_serves_from_a_read_only_mount(
        dockerfile: Dockerfile, image_venv: Path, inputs: Inputs, ro_mount: Path, tmp_path: Path) -> None:
    # The README's way round for an archived database: a copy in rollback-journal mode.
    with sqlite3.connect(inputs.db) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    conn.close()
    port = free_port()
    argv = local_argv(dockerfile, inputs, port, db=ro_mount / inputs.db.name)
    with launched(read_only_mounted(argv, inputs.db.parent, ro_mount), image_env(image_venv),
                  tmp_path, port) as server:
        answer = graphql(server, inputs.token, f'{{ run(runId: "{RUN["run_id"]}") {{ status }} }}')
        assert answer.json()["data"]["run"] is not None, answer.text
        assert stop(server) in STOPPED, server.output()
