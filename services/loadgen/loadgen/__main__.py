"""`python -m loadgen`: see loadgen.runner.main."""
from .runner import main

if __name__ == "__main__":
    raise SystemExit(main())
