from dvlite.cli.app import main

main()
