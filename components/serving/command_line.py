"""What scripts/predict.py and scripts/loadtest.py share as commands: the exit
statuses they both give, an argument parser whose usage errors exit with the
documented status, and reading the files named by their options."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from components.serving.endpoints import EndpointError

# argparse's own status for a usage error, 2, means "gateway unreachable" here.
EXIT_UNREACHABLE = 2
EXIT_USAGE = 6          # bad arguments or a bad stack file
EXIT_UNAUTHORIZED = 7   # no token where one is needed, or the gateway refused it (401/403)
EXIT_TLS = 8            # the gateway's certificate is not trusted (wrong or missing CA), or TLS failed

V1_EXAMPLE = '{"instances": [[1, 2, 3]]}'


class ToolParser(argparse.ArgumentParser):
    """--help shows the whole module docstring (examples, exit statuses); a usage
    error exits EXIT_USAGE."""

    def __init__(self, doc: str, **kwargs):
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                         **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def read_argument_file(option: str, path: Path, fix: str) -> bytes:
    """The bytes of the file an option names; EndpointError naming the option, the
    path and `fix` when it cannot be read."""
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise EndpointError(f"{option} {path}: cannot read it ({error.strerror}). {fix}") from None


def read_json_body(option: str, path: Path) -> bytes:
    """A V1 request body of the user's own, as given (checked to be JSON)."""
    body = read_argument_file(option, path, f"Give a JSON file with a V1 request such as {V1_EXAMPLE}.")
    try:
        json.loads(body)
    except ValueError:
        raise EndpointError(f"{option} {path} is not JSON: give a V1 request such as "
                            f"{V1_EXAMPLE}") from None
    return body
