"""Listening sockets, TLS contexts and the process's descriptor budget."""

from __future__ import annotations

import fcntl
import select
import socket
import ssl
import struct
import termios

__all__ = ["abort", "kernel_backlog", "close_quietly", "wait_readable", "wait_writable", "descriptor_budget", "listen",
           "make_ssl_context", "raise_descriptor_limit", "recv_nowait"]

RECV_SIZE = 65536


def make_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server TLS context with the standard library's modern defaults (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    return context


def listen(address: tuple[str, int]) -> socket.socket:
    """A non-blocking listening socket on ``address`` (an IPv6 ``"::"`` takes IPv4 too where it can)."""
    host, port = address
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family = infos[0][0]
    sock_address = infos[0][4][:2]
    dualstack = family == socket.AF_INET6 and host in ("::", "") and socket.has_dualstack_ipv6()
    sock = socket.create_server(sock_address, family=family, backlog=1024, dualstack_ipv6=dualstack)
    sock.setblocking(False)
    return sock


def recv_nowait(sock: socket.socket) -> bytes | None:
    """What the socket has (b"" at end of input), or None when nothing yet."""
    try:
        data = sock.recv(RECV_SIZE)
        if isinstance(sock, ssl.SSLSocket):
            while sock.pending():  # TLS may hold decrypted bytes the selector cannot see
                data += sock.recv(sock.pending())
        return data
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except OSError:
        return b""


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def descriptor_budget() -> int:
    """Connections this process can hold open: its descriptor limit less a reserve."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1 << 30
    return max(16, soft - 64) if soft != resource.RLIM_INFINITY else 1 << 30


def raise_descriptor_limit() -> None:
    """Let the process hold as many connections as the system allows it (as Go and nginx do)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, 65536), hard))
    except (ImportError, OSError, ValueError):
        pass


def kernel_backlog(sock: socket.socket) -> int:
    """Bytes the kernel holds for ``sock`` that the peer has not acknowledged (0 where it cannot tell).

    The kernel's send buffer can hold megabytes, and the socket turns
    writable only once a third of it is free: what the client really took
    is what left this queue, not what the server last wrote into it.
    """
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (OSError, ValueError, AttributeError):
        return 0


def abort(sock: socket.socket) -> None:
    """Close ``sock`` with a reset, dropping what the kernel still holds for the peer.

    For a client cut for not reading: a plain close would keep sending the
    megabytes already in the kernel's buffer, at the client's pace.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    close_quietly(sock)


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    """True once ``sock`` has input (TLS: decrypted bytes count), False after ``seconds``."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return _wait(sock, select.POLLIN, seconds)


def wait_writable(sock: socket.socket, seconds: float) -> bool:
    """True once ``sock`` has room to send, False after ``seconds``."""
    return _wait(sock, select.POLLOUT, seconds)


def _wait(sock: socket.socket, event: int, seconds: float) -> bool:
    poller = select.poll()  # not select(): descriptors past 1023 are normal here
    poller.register(sock, event)
    return bool(poller.poll(max(0.0, seconds) * 1000))
