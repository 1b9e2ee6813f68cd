"""``python -m codec`` is ``hylac-codec``."""

import sys

from codec.cli.main import main

sys.exit(main())
