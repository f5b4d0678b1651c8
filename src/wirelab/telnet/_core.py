"""Telnet option negotiation, sans I/O (RFC 854, 855, 1091): the client side of F94.

:class:`Negotiator` takes bytes from the server and returns the data bytes and the bytes to
send back. It agrees to one option, TTYPE (it answers ``DO TTYPE`` with ``WILL TTYPE`` and
``SB TTYPE SEND`` with ``SB TTYPE IS <terminal type>``), and refuses every other: ``WONT``
to a ``DO``, ``DONT`` to a ``WILL``. ``DONT``/``WONT`` of an option already off get no
answer (RFC 1143's rule against loops). The book's ``telnet_codes.py`` sent its terminal
type unprompted; here it goes only when the server asks. Every step is kept in
:attr:`Negotiator.log`, for the lesson.
"""

from __future__ import annotations

from wirelab.errors import ConfigError

__all__ = [
    "DO",
    "DONT",
    "IAC",
    "SB",
    "SE",
    "TTYPE",
    "WILL",
    "WONT",
    "Negotiator",
    "option_name",
]

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
NOP, GA = 241, 249
TTYPE = 24
TTYPE_IS, TTYPE_SEND = 0, 1

_COMMANDS = {DO: "DO", DONT: "DONT", WILL: "WILL", WONT: "WONT"}
_OPTIONS = {
    0: "BINARY",
    1: "ECHO",
    3: "SGA",
    5: "STATUS",
    24: "TTYPE",
    31: "NAWS",
    32: "TSPEED",
    33: "LFLOW",
    34: "LINEMODE",
    35: "XDISPLOC",
    36: "ENVIRON",
    39: "NEW_ENVIRON",
    42: "CHARSET",
    86: "MCCP2",
    87: "MCCP3",
}

#: The longest subnegotiation kept (bytes); a longer one is dropped.
MAX_SB = 1024


def option_name(code: int) -> str:
    """``TTYPE`` for 24, ``option 99`` for an unknown code."""
    return _OPTIONS.get(code, f"option {code}")


class Negotiator:
    """The client's half of option negotiation: refuse everything but TTYPE."""

    def __init__(self, terminal_type: str = "mypython") -> None:
        if (
            not terminal_type.isascii()
            or not terminal_type.isprintable()
            or len(terminal_type) > 40
        ):
            raise ConfigError("a terminal type is at most 40 printable ASCII characters")
        self.terminal_type = terminal_type
        self.log: list[str] = []
        self.ttype_on = False
        self._state = "data"
        self._command = 0
        self._sb = bytearray()
        self._sb_too_long = False

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Consume server bytes; return ``(data for the user, bytes to send back)``."""
        out = bytearray()
        reply = bytearray()
        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    out.append(byte)
            elif state == "iac":
                if byte == IAC:
                    out.append(IAC)
                    self._state = "data"
                elif byte in _COMMANDS:
                    self._command = byte
                    self._state = "option"
                elif byte == SB:
                    self._sb.clear()
                    self._sb_too_long = False
                    self._state = "sb"
                else:
                    self._state = "data"  # NOP, GA, and the rest: nothing to do
            elif state == "option":
                reply += self._answer(self._command, byte)
                self._state = "data"
            elif state == "sb":
                if byte == IAC:
                    self._state = "sb-iac"
                elif len(self._sb) < MAX_SB:
                    self._sb.append(byte)
                else:
                    self._sb_too_long = True
            elif state == "sb-iac":
                if byte == SE:
                    reply += self._subnegotiation(bytes(self._sb))
                    self._state = "data"
                else:
                    if byte == IAC and len(self._sb) < MAX_SB:
                        self._sb.append(IAC)
                    self._state = "sb"
        return bytes(out), bytes(reply)

    def _answer(self, command: int, option: int) -> bytes:
        name = option_name(option)
        heard = f"received {_COMMANDS[command]} {name}"
        if command == DO and option == TTYPE:
            if self.ttype_on:
                self.log.append(f"{heard}: already on")
                return b""
            self.ttype_on = True
            self.log.append(f"{heard}: sent WILL {name}")
            return bytes([IAC, WILL, option])
        if command == DO:
            self.log.append(f"{heard}: refused with WONT {name}")
            return bytes([IAC, WONT, option])
        if command == WILL:
            self.log.append(f"{heard}: refused with DONT {name}")
            return bytes([IAC, DONT, option])
        if command == DONT and option == TTYPE and self.ttype_on:
            self.ttype_on = False
            self.log.append(f"{heard}: sent WONT {name}")
            return bytes([IAC, WONT, option])
        self.log.append(f"{heard}: already off")
        return b""

    def _subnegotiation(self, body: bytes) -> bytes:
        if self._sb_too_long:
            self.log.append(f"received a subnegotiation over {MAX_SB} bytes: dropped")
            return b""
        if body[:2] == bytes([TTYPE, TTYPE_SEND]):
            if not self.ttype_on:
                self.log.append("received SB TTYPE SEND before DO TTYPE: ignored")
                return b""
            self.log.append(f"received SB TTYPE SEND: sent SB TTYPE IS {self.terminal_type}")
            return (
                bytes([IAC, SB, TTYPE, TTYPE_IS])
                + self.terminal_type.encode("ascii")
                + bytes([IAC, SE])
            )
        name = option_name(body[0]) if body else "(empty)"
        self.log.append(f"received SB {name} ({len(body)} bytes): ignored")
        return b""
