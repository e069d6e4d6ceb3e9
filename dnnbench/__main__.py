from dnnbench.cli import main

main()
