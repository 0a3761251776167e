"""Start the crm-sync service: `python -m switchboard_crm_sync` (the image runs the same)."""

from switchboard_platform.serve import serve

from .config import CrmSyncSettings
from .main import create_app


def main() -> None:
    """Serve the crm-sync API, consumers and transfer loop until SIGTERM."""
    serve("crm-sync", CrmSyncSettings, create_app)


if __name__ == "__main__":
    main()
