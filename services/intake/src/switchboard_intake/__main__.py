"""Start the intake service: `python -m switchboard_intake` (the image runs the same)."""

from switchboard_platform.serve import serve

from .config import IntakeSettings
from .main import create_app


def main() -> None:
    """Serve the intake API and consumers until SIGTERM."""
    serve("intake", IntakeSettings, create_app)


if __name__ == "__main__":
    main()
