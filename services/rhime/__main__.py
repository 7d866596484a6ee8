from rhime.cli import main

raise SystemExit(main())
