"""The web container's healthcheck: GET /healthz on Daphne as the proxy would send it (an allowed
host, https reported by a trusted proxy: 127.0.0.1 is one in the compose file), so neither the host
check nor the https redirect answers instead of the app. Exit 0 only on 200."""

import os
import sys
import urllib.error
import urllib.request

hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "localhost").split(",") if h.strip()]
host = next((h for h in hosts if h != "*"), "localhost")
port = os.environ.get("PORT", "8000")
request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": host, "X-Forwarded-Proto": "https"})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
