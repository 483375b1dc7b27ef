"""Rendering: Reply -> Document (views) -> Block Kit (slack.py) or plain text (text.py).

Importing this package registers every verb's view; each view module is listed here.
"""

from bot.render import views  # noqa: F401  (Message and HelpReply views)

# One line per verb view module:
