import os

# Jupyter's own deprecation warning about moving to platformdirs would be an error under our
# strict warning filter; opting in to the new paths is what Jupyter recommends.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
