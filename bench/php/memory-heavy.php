<?php
// bench `recycle-cost`: php/memory.php's heavy request every time (about 300 MB
// of small strings), then the page of php-table.
ini_set('memory_limit', '1G');
$pad = str_repeat('x', 60);
$a = [];
for ($i = 0; $i < 2600000; $i++) {
    $a[] = $pad . $i;
}
echo "<!-- heavy: ", count($a), " entries -->\n";
unset($a);
include __DIR__ . '/table.php';
