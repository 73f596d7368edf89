"""Suite-wide settings: in CI, hypothesis draws the same examples on every run (a failure
is then reproducible from the log and never depends on the day's luck); locally it explores."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
