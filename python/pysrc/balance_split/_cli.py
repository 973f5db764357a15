"""The ``balance-split`` command a pip install puts on PATH: the Rust CLI itself."""

import sys

from ._native import main as _main


def main() -> None:
    sys.exit(_main(sys.argv))


if __name__ == "__main__":
    main()
