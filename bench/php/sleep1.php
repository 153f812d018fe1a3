<?php
// The slow script of bench/pm.py's dynamic-burst: 1 s, then a short answer.
usleep(1000000);
echo "slept\n";
