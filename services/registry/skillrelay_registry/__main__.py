from skillrelay_registry.app import main

main()
