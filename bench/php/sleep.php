<?php
// The slow script of bench/pm.py's ondemand-ramp: 200 ms, then a short answer.
usleep(200000);
echo "slept\n";
