from tasks.validation.check import main

raise SystemExit(main())
