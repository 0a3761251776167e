"""Schemathesis over the notes API, as a real process, with every role (issue 8, "Proof")."""

from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.api_fuzz import fuzz_module

service_process, test_no_5xx_and_every_answer_documented, test_refused_roles_too = fuzz_module(
    "notes", "switchboard_notes", create_app(NotesSettings(environment="test"))
)
