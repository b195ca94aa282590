"""`python -m deploy cloudbuild|indexes`: see `deploy.cloudbuild`."""

import sys

from deploy.cloudbuild import main

sys.exit(main())
