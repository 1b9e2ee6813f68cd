"""``python -m codec`` is ``hylac-codec``."""

import sys

from codec.cli import main

sys.exit(main())
