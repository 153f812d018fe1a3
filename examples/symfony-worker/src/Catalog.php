<?php

namespace App;

/** An in-memory catalogue: the data a page of the example renders. */
class Catalog
{
    private array $items = [];
    private int $served = 0;

    public function __construct()
    {
        $names = ['Lamp', 'Chair', 'Desk', 'Shelf', 'Rug', 'Clock', 'Vase', 'Mirror'];
        for ($i = 1; $i <= 1000; $i++) {
            $this->items[] = [
                'id' => $i,
                'name' => $names[$i % count($names)].' '.$i,
                'category' => $names[($i * 7) % count($names)],
                'price' => round(($i * 37 % 1000) / 7, 2),
                'stock' => $i * 13 % 50,
            ];
        }
    }

    public function page(int $page, int $size): array
    {
        $this->served++;
        return array_slice($this->items, (($page - 1) * $size) % count($this->items), $size);
    }

    public function categories(): array
    {
        $counts = [];
        foreach ($this->items as $item) {
            $counts[$item['category']] = ($counts[$item['category']] ?? 0) + 1;
        }
        ksort($counts);
        return $counts;
    }

    public function served(): int
    {
        return $this->served;
    }
}
