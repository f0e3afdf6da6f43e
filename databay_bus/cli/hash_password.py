"""``databay-bus hash-password``: the stored form of a web user's password or API token."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from databay_bus.cli._common import EXIT_OK, EXIT_USAGE, CommandFailure

__all__ = ["ORDER", "register"]

ORDER = 60


def register(commands: Any) -> None:
    """Add the ``hash-password`` command."""
    command = commands.add_parser(
        "hash-password",
        help="print the password_hash of a web user (or a new API token and its hash)",
        description="Ask for a password twice (not echoed) and print its salted scrypt hash, "
        "to paste as password_hash in [web.users.NAME]. With --stdin, read one line instead "
        "(for scripts). With --token, make a new random API token instead and print it "
        "(shown once) and the hash to list in tokens.",
    )
    how = command.add_mutually_exclusive_group()
    how.add_argument("--stdin", action="store_true", help="read the password from stdin")
    how.add_argument("--token", action="store_true", help="make a new API token instead")
    command.set_defaults(handler=_hash_password)


def _hash_password(args: argparse.Namespace) -> int:
    from databay_bus.web.auth import hash_password, hash_token, new_token

    if args.token:
        token = new_token()
        print(f"token (give it to the client; it is not stored): {token}")
        print(f'tokens = ["{hash_token(token)}"]')
        return EXIT_OK
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except EOFError:
            raise CommandFailure(
                "no password: the input ended (to pipe one in, use --stdin)", EXIT_USAGE
            ) from None
        if again != password:
            raise CommandFailure("the passwords differ", EXIT_USAGE)
    if not password:
        raise CommandFailure("the password is empty", EXIT_USAGE)
    print(f'password_hash = "{hash_password(password)}"')
    return EXIT_OK
