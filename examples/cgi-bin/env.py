# Run through cgi.interpreter[.py]: no execute bit needed.
import os
import sys

body = sys.stdin.read(int(os.environ.get("CONTENT_LENGTH") or 0))
print("Content-Type: text/plain")
print()
for key in sorted(os.environ):
    print(f"{key}={os.environ[key]}")
print(f"\nbody: {body!r}")
