<?php
// The heavier page of the php-hello/php-table scenarios: a 200-row HTML
// table generated from an array, escaped, in a small template.
$rows = [];
for ($i = 1; $i <= 200; $i++) {
    $rows[] = ['id' => $i, 'name' => "Item <$i>", 'price' => $i * 1.25,
               'stock' => ($i * 7919) % 97, 'tags' => ['a' . ($i % 5), 'b' . ($i % 3)]];
}
?><!DOCTYPE html>
<html><head><title>Table</title></head><body>
<table>
<tr><th>#</th><th>Name</th><th>Price</th><th>Stock</th><th>Tags</th></tr>
<?php foreach ($rows as $r): ?>
<tr class="<?= $r['id'] % 2 ? 'odd' : 'even' ?>"><td><?= $r['id'] ?></td><td><?= htmlspecialchars($r['name']) ?></td><td><?= number_format($r['price'], 2) ?></td><td><?= $r['stock'] ?></td><td><?= htmlspecialchars(implode(', ', $r['tags'])) ?></td></tr>
<?php endforeach; ?>
</table>
<p>Total rows: <?= count($rows) ?></p>
</body></html>
