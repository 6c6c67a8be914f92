"""`charexp sweep`, with the faults named in $CHAREXP_FAULTS installed first (see inject.py). Test-only."""

import inject

inject.install_from_env()

from charexp.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
