"""Start the notify service: `python -m switchboard_notify` (the image runs the same)."""

from switchboard_platform.serve import serve

from .config import NotifySettings
from .main import create_app


def main() -> None:
    """Serve the notify API, consumers and sender until SIGTERM."""
    serve("notify", NotifySettings, create_app)


if __name__ == "__main__":
    main()
