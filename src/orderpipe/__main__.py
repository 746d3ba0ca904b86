from orderpipe.cli import main

main()
