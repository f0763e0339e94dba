"""The student simulator: a dashboard page where an administrator chats with the bot as a test
student, through the built-in Telegram emulator's control API (`/sim/...`).

- `client.py`: EmulatorClient, the HTTP calls to the emulator and the errors they map to;
- `service.py`: which students the page lists, and how emulator data is shown to the browser;
- `deps.py`: the emulator client per request, and admin checks that hold no database connection;
- `api.py`: JSON routes under /simulator/api/ for `static/simulator.js`;
- `pages.py`: the page itself, GET /simulator.
"""
