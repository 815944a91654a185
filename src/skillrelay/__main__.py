from skillrelay.cli import main

main()
