"""Start the retention service: `python -m switchboard_retention` (the image runs the same)."""

from switchboard_platform.serve import serve

from .config import RetentionSettings
from .main import create_app


def main() -> None:
    """Serve the retention API, consumers and scheduler until SIGTERM."""
    serve("retention", RetentionSettings, create_app)


if __name__ == "__main__":
    main()
