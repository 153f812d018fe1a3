<?php
// The fast script of bench/pm.py's recycle and reload scenarios.
echo "Hello, world!\n";
