"""What the support handlers share: commands are not support messages."""

from __future__ import annotations

from aiogram import F

# Commands (/start, /menu, /cancel...) belong to the students router, whatever step a student is
# at in a support flow; typed text and media are ours.
NOT_COMMAND = ~F.text.startswith("/")
