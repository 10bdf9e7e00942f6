; A boot sector for the HVM tests: SeaBIOS loads it at 0000:7C00 from the
; first disk. It says hello on COM1 (as a kernel's early console does, one
; byte at a time into the transmit register), puts a line on the VGA text
; screen, and halts with interrupts on, so the vCPU blocks.
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov dx, 0x3f8
    mov si, msg
.serial:
    lodsb
    test al, al
    jz .vga
    out dx, al
    jmp .serial
.vga:
    mov ax, 0xb800
    mov es, ax
    mov di, 160 * 12            ; row 12, column 0
    mov si, screen
    mov ah, 0x1f                ; white on blue
.cell:
    lodsb
    test al, al
    jz .halt
    stosw
    jmp .cell
.halt:
    sti
    hlt
    jmp .halt
msg:    db "hello from an HVM boot sector", 13, 10, 0
screen: db "XENEMU HVM BOOT SECTOR", 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
