"""A throw-away OpenSSH server on 127.0.0.1 for the DVC ssh-remote test: its own host key, one client key, sftp.

Debian's `openssh-server` provides /usr/sbin/sshd (.ci/run installs it). The server listens on a free loopback port,
authorises only the generated key, and is stopped when the context exits. `home` is a folder to use as $HOME for the
client side: its .ssh/known_hosts trusts this server's host key, as asyncssh (under dvc-ssh) requires.
"""
from __future__ import annotations

import getpass
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it


@dataclass
class SSHServer:
    port: int
    user: str
    keyfile: Path
    home: Path

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"


def unavailable_reason() -> str | None:
    """Why no server can start here (None when one can)."""
    if not SSHD.exists():
        return f"{SSHD} absent: apt-get install -y openssh-server (.ci/run does)"
    try:
        PRIVSEP_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"sshd needs {PRIVSEP_DIR} and it cannot be created ({exc}); run as root or create it"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def ssh_server(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "StrictModes no", "Subsystem sftp internal-sftp", "",
    ]))
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True)
    host_key = (folder / "host_key.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    log = open(folder / "sshd.log", "w")
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:  # bounded wait until the port accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()}") from None
                time.sleep(0.1)
        yield SSHServer(port=port, user=getpass.getuser(), keyfile=folder / "client_key", home=home)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def client_env(server: SSHServer) -> dict[str, str]:
    """Environment for the DVC client: $HOME with the known_hosts entry, no agent to fall back on."""
    return {"HOME": str(server.home), "SSH_AUTH_SOCK": ""}
