<?php
// bench `memory`: every 200th request (a counter shared by the pool's workers,
// memory.count, reset by bench/pm.py for each server) builds about 300 MB of
// small strings, as a report or an import does; PHP's allocator and glibc keep
// part of it after the request.  The others render the page of php-table.
$f = fopen(__DIR__ . '/memory.count', 'c+');
flock($f, LOCK_EX);
$n = (int)stream_get_contents($f) + 1;
rewind($f);
ftruncate($f, 0);
fwrite($f, (string)$n);
flock($f, LOCK_UN);
fclose($f);
// memory.heavy: the pids of the workers in a heavy request now, so that the
// bench can tell what the rest of the pool holds between heavy requests
function heavy_mark($add)
{
    $h = fopen(__DIR__ . '/memory.heavy', 'c+');
    flock($h, LOCK_EX);
    $pids = array_filter(explode(' ', trim(stream_get_contents($h))));
    $pids = $add ? array_merge($pids, [getmypid()]) : array_diff($pids, [getmypid()]);
    rewind($h);
    ftruncate($h, 0);
    fwrite($h, implode(' ', $pids));
    flock($h, LOCK_UN);
    fclose($h);
}
if ($n % 200 === 0) {
    heavy_mark(true);
    register_shutdown_function('heavy_mark', false);
    ini_set('memory_limit', '1G');
    $pad = str_repeat('x', 60);
    $a = [];
    for ($i = 0; $i < 2600000; $i++) {
        $a[] = $pad . $i;
    }
    echo "<!-- heavy: ", count($a), " entries -->\n";
    unset($a);
}
include __DIR__ . '/table.php';
