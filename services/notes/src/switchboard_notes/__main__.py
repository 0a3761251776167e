"""Start the notes service: `python -m switchboard_notes` (the image runs the same)."""

import uvicorn

from switchboard_platform.logs import configure_logging

from .config import NotesSettings
from .main import create_app


def main() -> None:
    """Serve the notes API and consumers until SIGTERM."""
    settings = NotesSettings()
    configure_logging("notes")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
