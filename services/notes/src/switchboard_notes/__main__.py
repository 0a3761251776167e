"""Start the notes service: `python -m switchboard_notes` (the image runs the same)."""

from switchboard_platform.serve import serve

from .config import NotesSettings
from .main import create_app


def main() -> None:
    """Serve the notes API and consumers until SIGTERM."""
    serve("notes", NotesSettings, create_app)


if __name__ == "__main__":
    main()
