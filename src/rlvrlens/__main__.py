from rlvrlens.cli import main

raise SystemExit(main())
