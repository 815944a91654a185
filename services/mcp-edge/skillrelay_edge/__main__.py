from skillrelay_edge.app import main

main()
